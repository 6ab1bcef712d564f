from nonid.cli import main

raise SystemExit(main())

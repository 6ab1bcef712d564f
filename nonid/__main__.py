from nonid.cli import console

console()

(** * Finite sums over lists. *)
Require Import Reals Lra List.
Import ListNotations.
Open Scope R_scope.

Fixpoint sum {X : Type} (l : list X) (f : X -> R) : R :=
  match l with [] => 0 | x :: t => f x + sum t f end.

Section S.
Context {X : Type}.

Lemma sum_app (l1 l2 : list X) f : sum (l1 ++ l2) f = sum l1 f + sum l2 f.
Proof. induction l1 as [|x t IH]; simpl; [ring| rewrite IH; ring]. Qed.

Lemma sum_ext (l : list X) f g : (forall x, In x l -> f x = g x) -> sum l f = sum l g.
Proof.
  induction l as [|x t IH]; simpl; intros H; [reflexivity|].
  rewrite (H x (or_introl eq_refl)), IH by auto. reflexivity.
Qed.

Lemma sum_plus (l : list X) f g : sum l (fun x => f x + g x) = sum l f + sum l g.
Proof. induction l as [|x t IH]; simpl; [ring| rewrite IH; ring]. Qed.

Lemma sum_minus (l : list X) f g : sum l (fun x => f x - g x) = sum l f - sum l g.
Proof. induction l as [|x t IH]; simpl; [ring| rewrite IH; ring]. Qed.

Lemma sum_scal_l (l : list X) c f : sum l (fun x => c * f x) = c * sum l f.
Proof. induction l as [|x t IH]; simpl; [ring| rewrite IH; ring]. Qed.

Lemma sum_scal_r (l : list X) c f : sum l (fun x => f x * c) = sum l f * c.
Proof. induction l as [|x t IH]; simpl; [ring| rewrite IH; ring]. Qed.

Lemma sum_zero (l : list X) f : (forall x, In x l -> f x = 0) -> sum l f = 0.
Proof.
  induction l as [|x t IH]; simpl; intros H; [reflexivity|].
  rewrite (H x (or_introl eq_refl)), IH by auto. ring.
Qed.

Lemma sum_nonneg (l : list X) f : (forall x, In x l -> 0 <= f x) -> 0 <= sum l f.
Proof.
  induction l as [|x t IH]; simpl; intros H; [lra|].
  pose proof (H x (or_introl eq_refl)). assert (0 <= sum t f) by auto. lra.
Qed.

Lemma sum_le (l : list X) f g : (forall x, In x l -> f x <= g x) -> sum l f <= sum l g.
Proof.
  induction l as [|x t IH]; simpl; intros H; [lra|].
  pose proof (H x (or_introl eq_refl)). assert (sum t f <= sum t g) by auto. lra.
Qed.

Lemma sum_ge_term (l : list X) f x :
  (forall y, In y l -> 0 <= f y) -> In x l -> f x <= sum l f.
Proof.
  induction l as [|y t IH]; simpl; intros H Hin; [contradiction|].
  destruct Hin as [<-|Hin].
  - assert (0 <= sum t f) by (apply sum_nonneg; auto). lra.
  - pose proof (H y (or_introl eq_refl)). assert (f x <= sum t f) by auto. lra.
Qed.

Lemma sum_pos_exists (l : list X) f : 0 < sum l f -> exists x, In x l /\ 0 < f x.
Proof.
  induction l as [|y t IH]; simpl; intros H; [lra|].
  destruct (Rlt_le_dec 0 (f y)) as [Hy|Hy].
  - exists y; auto.
  - destruct IH as [x [Hx Hfx]]; [lra| exists x; auto].
Qed.

Lemma sum_nonneg_zero (l : list X) f :
  (forall x, In x l -> 0 <= f x) -> sum l f = 0 -> forall x, In x l -> f x = 0.
Proof.
  intros H0 Hs x Hx. pose proof (sum_ge_term l f x H0 Hx). pose proof (H0 x Hx). lra.
Qed.

Lemma sum_filter (l : list X) (b : X -> bool) f :
  (forall x, In x l -> b x = false -> f x = 0) -> sum (filter b l) f = sum l f.
Proof.
  induction l as [|x t IH]; simpl; intros H; [reflexivity|].
  destruct (b x) eqn:E; simpl.
  - rewrite IH by auto. reflexivity.
  - rewrite (H x (or_introl eq_refl) E), IH by auto. ring.
Qed.
End S.

Lemma sum_map {X Y : Type} (g : X -> Y) (l : list X) f :
  sum (map g l) f = sum l (fun x => f (g x)).
Proof. induction l as [|x t IH]; simpl; [reflexivity| rewrite IH; reflexivity]. Qed.

Lemma sum_flat_map {X Y : Type} (g : X -> list Y) (l : list X) f :
  sum (flat_map g l) f = sum l (fun x => sum (g x) f).
Proof. induction l as [|x t IH]; simpl; [reflexivity| rewrite sum_app, IH; reflexivity]. Qed.

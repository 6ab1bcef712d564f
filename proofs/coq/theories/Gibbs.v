(** * Gibbs' inequality (Lemma C) and the equality case (Lemma B) for finite vectors.

    A pair of finite vectors p, q is a list of pairs (p_i, q_i).
    KL(p||q) = sum_i p_i ln(p_i / q_i).  No 0 ln 0 convention has to be added:
    the term is p_i * ln(...), which is 0 when p_i = 0. *)
Require Import Reals Lra List.
Import ListNotations.
Require Import Nonid.LnIneq Nonid.Sums.
Open Scope R_scope.

Definition sp (l : list (R * R)) : R := sum l fst.
Definition sq (l : list (R * R)) : R := sum l snd.
Definition KL (l : list (R * R)) : R := sum l (fun pq => fst pq * ln (fst pq / snd pq)).

(** p_i >= 0, q_i >= 0, and q_i > 0 wherever p_i > 0. *)
Definition admissible (l : list (R * R)) : Prop :=
  forall pq, In pq l -> 0 <= fst pq /\ 0 <= snd pq /\ (0 < fst pq -> 0 < snd pq).

Theorem KL_ge_mass_diff : forall l, admissible l -> sp l - sq l <= KL l.
Proof.
  intros l Hl. unfold sp, sq, KL. rewrite <- sum_minus. apply sum_le.
  intros [p q] Hin. destruct (Hl _ Hin) as [Hp [Hq Hpq]]. simpl in *.
  apply xlog_ge; assumption.
Qed.

(** Lemma C (Gibbs). *)
Theorem gibbs : forall l, admissible l -> sp l = 1 -> sq l <= 1 -> 0 <= KL l.
Proof. intros l Hl Hp Hq. pose proof (KL_ge_mass_diff l Hl). lra. Qed.

(** Lemma B, full form: with sum p = 1 and sum q <= 1, KL = 0 iff q = p entrywise. *)
Theorem KL_zero_iff : forall l, admissible l -> sp l = 1 -> sq l <= 1 ->
  (KL l = 0 <-> forall pq, In pq l -> snd pq = fst pq).
Proof.
  intros l Hl Hp Hq. split.
  - intros H0.
    set (g := fun pq : R * R => fst pq * ln (fst pq / snd pq) - (fst pq - snd pq)).
    assert (Hg : forall pq, In pq l -> 0 <= g pq).
    { intros [p q] Hin. destruct (Hl _ Hin) as [Hp' [Hq' Hpq]]. unfold g; simpl in *.
      pose proof (xlog_ge p q Hp' Hq' Hpq). lra. }
    assert (Hs : sum l g = 0).
    { assert (E : sum l g = KL l - (sp l - sq l)).
      { unfold g, KL, sp, sq. rewrite sum_minus, sum_minus. reflexivity. }
      pose proof (sum_nonneg l g Hg). lra. }
    intros [p q] Hin. pose proof (sum_nonneg_zero l g Hg Hs _ Hin) as E.
    destruct (Hl _ Hin) as [Hp' [Hq' Hpq]]. unfold g in E; simpl in *.
    apply xlog_eq; auto. lra.
  - intros Heq. unfold KL. apply sum_zero. intros [p q] Hin.
    specialize (Heq _ Hin). simpl in *. subst q.
    destruct (Req_dec p 0) as [->|Hne]; [ring|].
    replace (p / p) with 1 by (field; exact Hne). rewrite ln_1. ring.
Qed.

(** Lemma B, support form: KL = 0 iff q_i = p_i at every i with p_i > 0.
    (By [KL_zero_iff] this already forces q = p everywhere.) *)
Theorem KL_zero_iff_support : forall l, admissible l -> sp l = 1 -> sq l <= 1 ->
  (KL l = 0 <-> forall pq, In pq l -> 0 < fst pq -> snd pq = fst pq).
Proof.
  intros l Hl Hp Hq. split.
  - intros H0 pq Hin _. apply (proj1 (KL_zero_iff l Hl Hp Hq) H0 pq Hin).
  - intros Heq. unfold KL. apply sum_zero. intros [p q] Hin.
    destruct (Hl _ Hin) as [Hp' [Hq' Hpq]]. simpl in *.
    destruct (Rle_lt_or_eq_dec 0 p Hp') as [Hpos|Hz].
    + specialize (Heq _ Hin Hpos). simpl in Heq. subst q.
      replace (p / p) with 1 by (field; lra). rewrite ln_1. ring.
    + subst p. ring.
Qed.

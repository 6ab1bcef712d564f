(** * ln x <= x - 1 and the per-term inequalities used by Gibbs. *)
Require Import Reals Lra Psatz.
Open Scope R_scope.

(** ln x <= x - 1 for x > 0, from [exp_ineq1_le : 1 + y <= exp y]. *)
Theorem ln_le_sub_1 : forall x, 0 < x -> ln x <= x - 1.
Proof.
  intros x Hx. pose proof (exp_ineq1_le (ln x)) as H.
  rewrite exp_ln in H by exact Hx. lra.
Qed.

(** Strict for x <> 1, from [exp_ineq1 : y <> 0 -> 1 + y < exp y]. *)
Theorem ln_lt_sub_1 : forall x, 0 < x -> x <> 1 -> ln x < x - 1.
Proof.
  intros x Hx H1.
  assert (H0 : ln x <> 0).
  { intro H0. apply H1. rewrite <- (exp_ln x Hx), H0. apply exp_0. }
  pose proof (exp_ineq1 (ln x) H0) as H. rewrite exp_ln in H by exact Hx. lra.
Qed.

Theorem ln_eq_sub_1_iff : forall x, 0 < x -> (ln x = x - 1 <-> x = 1).
Proof.
  intros x Hx; split; intro H.
  - destruct (Req_dec x 1) as [E|Hne]; [exact E|].
    pose proof (ln_lt_sub_1 x Hx Hne). lra.
  - subst. rewrite ln_1. lra.
Qed.

(** Small facts about positivity of products. *)
Lemma pos_factor_l : forall c z, 0 <= c -> 0 < c * z -> 0 < c.
Proof.
  intros c z Hc H. destruct (Rle_lt_or_eq_dec 0 c Hc) as [H'|H']; [exact H'|].
  subst c. rewrite Rmult_0_l in H. lra.
Qed.

Lemma pos_factor_r : forall c z, 0 <= c -> 0 < c * z -> 0 < z.
Proof.
  intros c z Hc H. pose proof (pos_factor_l c z Hc H) as Hc'.
  destruct (Rlt_le_dec 0 z) as [Hz|Hz]; [exact Hz|].
  assert (c * z <= c * 0) by (apply Rmult_le_compat_l; lra). lra.
Qed.

(** Splitting the logarithm inside a term a * ln(a / ...); a = 0 makes both sides 0
    (0 * ln _ = 0), so only a > 0 needs positive arguments. *)
Lemma xlog_split : forall a b, 0 <= a -> (0 < a -> 0 < b) ->
  a * ln (a / b) = a * ln a - a * ln b.
Proof.
  intros a b Ha Hab. destruct (Rle_lt_or_eq_dec 0 a Ha) as [Hp|Hz].
  - specialize (Hab Hp). unfold Rdiv.
    rewrite ln_mult by (try apply Rinv_0_lt_compat; assumption).
    rewrite ln_Rinv by assumption. ring.
  - subst a. ring.
Qed.

Lemma xlog_div_mult : forall a b c, 0 <= a -> (0 < a -> 0 < b /\ 0 < c) ->
  a * ln (a / (b * c)) = a * ln (a / c) - a * ln b.
Proof.
  intros a b c Ha Habc. destruct (Rle_lt_or_eq_dec 0 a Ha) as [Hp|Hz].
  - destruct (Habc Hp) as [Hb Hc].
    replace (a / (b * c)) with ((a / c) * / b) by (field; split; lra).
    assert (0 < a / c) by (unfold Rdiv; apply Rmult_lt_0_compat; [lra| apply Rinv_0_lt_compat; lra]).
    rewrite ln_mult by (try apply Rinv_0_lt_compat; assumption).
    rewrite ln_Rinv by assumption. ring.
  - subst a. ring.
Qed.

(** The per-term Gibbs inequality: a - c <= a ln(a/c). *)
Lemma xlog_ge : forall a c, 0 <= a -> 0 <= c -> (0 < a -> 0 < c) ->
  a - c <= a * ln (a / c).
Proof.
  intros a c Ha Hc Hac. destruct (Rle_lt_or_eq_dec 0 a Ha) as [Hp|Hz].
  - specialize (Hac Hp).
    assert (Hca : 0 < c / a) by (unfold Rdiv; apply Rmult_lt_0_compat; [lra| apply Rinv_0_lt_compat; lra]).
    pose proof (ln_le_sub_1 (c / a) Hca) as H.
    assert (E : ln (a / c) = - ln (c / a)).
    { rewrite <- ln_Rinv by exact Hca. f_equal. field. split; lra. }
    assert (H2 : a * ln (c / a) <= a * (c / a - 1)) by (apply Rmult_le_compat_l; lra).
    replace (a * (c / a - 1)) with (c - a) in H2 by (field; lra).
    rewrite E. lra.
  - subst a. rewrite Rmult_0_l. lra.
Qed.

(** Equality in the per-term inequality forces c = a. *)
Lemma xlog_eq : forall a c, 0 <= a -> 0 <= c -> (0 < a -> 0 < c) ->
  a * ln (a / c) = a - c -> c = a.
Proof.
  intros a c Ha Hc Hac Heq. destruct (Rle_lt_or_eq_dec 0 a Ha) as [Hp|Hz].
  - specialize (Hac Hp).
    assert (Hca : 0 < c / a) by (unfold Rdiv; apply Rmult_lt_0_compat; [lra| apply Rinv_0_lt_compat; lra]).
    destruct (Req_dec (c / a) 1) as [E1|Hne].
    + assert (c = (c / a) * a) by (field; lra). rewrite E1 in H. lra.
    + pose proof (ln_lt_sub_1 (c / a) Hca Hne) as H.
      assert (E : ln (a / c) = - ln (c / a)).
      { rewrite <- ln_Rinv by exact Hca. f_equal. field. split; lra. }
      assert (H2 : a * ln (c / a) < a * (c / a - 1)) by (apply Rmult_lt_compat_l; lra).
      replace (a * (c / a - 1)) with (c - a) in H2 by (field; lra).
      rewrite E in Heq. lra.
  - subst a. rewrite Rmult_0_l in Heq. lra.
Qed.

(** * Pinsker's inequality  2 TV(p,q)^2 <= KL(p||q)  for finite vectors, and the margin lemma.

    Vectors are lists of pairs (p_i, q_i) as in Gibbs.v.  Route:
    - binary case  kl(p||q) >= 2 (p - q)^2  by the mean value theorem ([MVT_cor2])
      applied to  g(t) = - p ln t - (1-p) ln (1-t) - 2 (p-t)^2,  whose derivative is
      g'(t) = (t - p) (1 - 4 t (1-t)) / (t (1-t)), of the sign of t - p;
    - the log-sum inequality  sum_i p_i ln(p_i/q_i) >= (sum p_i) ln(sum p_i / sum q_i);
    - the vector case: split the list along E = { i : q_i <= p_i }; then
      TV = P(E) - Q(E) and KL >= kl(P(E) || Q(E)). *)
Require Import Reals Lra List.
Require Import Nonid.LnIneq Nonid.Sums Nonid.Gibbs.
Open Scope R_scope.

(** ** Calculus: the binary inequality. *)

Lemma dlim_eq : forall f x l l', derivable_pt_lim f x l -> l = l' -> derivable_pt_lim f x l'.
Proof. intros f x l l' H E. subst l'. exact H. Qed.

(** t(1-t) <= 1/4 in the form 0 <= 1 - 4 t (1-t). *)
Lemma quarter_bound : forall t, 0 <= 1 - 4 * t * (1 - t).
Proof.
  intros t. replace (1 - 4 * t * (1 - t)) with ((2 * t - 1) * (2 * t - 1)) by ring.
  apply Rle_0_sqr.
Qed.

Definition gbin (p t : R) : R := - (p * ln t) - (1 - p) * ln (1 - t) - 2 * ((p - t) * (p - t)).
Definition gbin' (p t : R) : R := - (p * / t) + (1 - p) * / (1 - t) + 4 * (p - t).

(** g_p has derivative g_p' on (0,1). *)
Lemma gbin_deriv : forall p c, 0 < c < 1 -> derivable_pt_lim (gbin p) c (gbin' p c).
Proof.
  intros p c Hc.
  assert (D1 : derivable_pt_lim (mult_real_fct p ln) c (p * / c)).
  { apply derivable_pt_lim_scal. apply derivable_pt_lim_ln. lra. }
  assert (D2a : derivable_pt_lim (minus_fct (fct_cte 1) id) c (0 - 1)).
  { apply derivable_pt_lim_minus; [apply derivable_pt_lim_const| apply derivable_pt_lim_id]. }
  assert (D2b : derivable_pt_lim ln (minus_fct (fct_cte 1) id c) (/ (1 - c))).
  { apply derivable_pt_lim_ln. unfold minus_fct, fct_cte, id. lra. }
  pose proof (derivable_pt_lim_comp _ _ _ _ _ D2a D2b) as D2.
  apply (derivable_pt_lim_scal _ (1 - p)) in D2.
  assert (D3a : derivable_pt_lim (minus_fct (fct_cte p) id) c (0 - 1)).
  { apply derivable_pt_lim_minus; [apply derivable_pt_lim_const| apply derivable_pt_lim_id]. }
  pose proof (derivable_pt_lim_mult _ _ _ _ _ D3a D3a) as D3.
  apply (derivable_pt_lim_scal _ 2) in D3.
  pose proof (derivable_pt_lim_minus _ _ _ _ _
               (derivable_pt_lim_minus _ _ _ _ _ (derivable_pt_lim_opp _ _ _ D1) D2) D3) as D.
  eapply derivable_pt_lim_ext; [|eapply dlim_eq; [exact D|]].
  - intros z. unfold gbin, minus_fct, opp_fct, mult_real_fct, mult_fct, comp, fct_cte, id.
    ring.
  - unfold gbin', minus_fct, fct_cte, id. field. lra.
Qed.

(** The sign of the derivative: (t - p) g_p'(t) >= 0, since
    g_p'(t) = (t - p) (1 - 4 t (1-t)) / (t (1-t)). *)
Lemma gbin'_factor : forall p t, 0 < t < 1 ->
  gbin' p t = (t - p) * ((1 - 4 * t * (1 - t)) / (t * (1 - t))).
Proof. intros p t Ht. unfold gbin'. field. lra. Qed.

Lemma gbin'_coef_nonneg : forall t, 0 < t < 1 -> 0 <= (1 - 4 * t * (1 - t)) / (t * (1 - t)).
Proof.
  intros t Ht. unfold Rdiv. apply Rmult_le_pos; [apply quarter_bound|].
  apply Rlt_le, Rinv_0_lt_compat, Rmult_lt_0_compat; lra.
Qed.

(** g_p is minimal at t = p on (0,1). *)
Lemma gbin_min : forall p q, 0 < p < 1 -> 0 < q < 1 -> gbin p p <= gbin p q.
Proof.
  intros p q Hp Hq.
  destruct (Rtotal_order q p) as [Hlt|[Heq|Hgt]].
  - destruct (MVT_cor2 (gbin p) (gbin' p) q p Hlt) as [c [Hc Hcin]].
    { intros c Hcin. apply gbin_deriv. lra. }
    rewrite gbin'_factor in Hc by lra.
    pose proof (gbin'_coef_nonneg c ltac:(lra)) as Hk.
    set (k := (1 - 4 * c * (1 - c)) / (c * (1 - c))) in *.
    assert (0 <= (p - c) * k * (p - q)) by (apply Rmult_le_pos; [apply Rmult_le_pos|]; lra).
    lra.
  - subst q. lra.
  - destruct (MVT_cor2 (gbin p) (gbin' p) p q Hgt) as [c [Hc Hcin]].
    { intros c Hcin. apply gbin_deriv. lra. }
    rewrite gbin'_factor in Hc by lra.
    pose proof (gbin'_coef_nonneg c ltac:(lra)) as Hk.
    set (k := (1 - 4 * c * (1 - c)) / (c * (1 - c))) in *.
    assert (0 <= (c - p) * k * (q - p)) by (apply Rmult_le_pos; [apply Rmult_le_pos|]; lra).
    lra.
Qed.

(** The edge case p = 0:  -ln(1-t) >= 2 t^2 on [0,1), via h(t) = - ln(1-t) - 2 t^2. *)
Definition hedge (t : R) : R := - ln (1 - t) - 2 * (t * t).
Definition hedge' (t : R) : R := / (1 - t) - 4 * t.

Lemma hedge_deriv : forall c, c < 1 -> derivable_pt_lim hedge c (hedge' c).
Proof.
  intros c Hc.
  assert (D2a : derivable_pt_lim (minus_fct (fct_cte 1) id) c (0 - 1)).
  { apply derivable_pt_lim_minus; [apply derivable_pt_lim_const| apply derivable_pt_lim_id]. }
  assert (D2b : derivable_pt_lim ln (minus_fct (fct_cte 1) id c) (/ (1 - c))).
  { apply derivable_pt_lim_ln. unfold minus_fct, fct_cte, id. lra. }
  pose proof (derivable_pt_lim_comp _ _ _ _ _ D2a D2b) as D2.
  pose proof (derivable_pt_lim_mult _ _ _ _ _ (derivable_pt_lim_id c) (derivable_pt_lim_id c)) as D3.
  apply (derivable_pt_lim_scal _ 2) in D3.
  pose proof (derivable_pt_lim_minus _ _ _ _ _ (derivable_pt_lim_opp _ _ _ D2) D3) as D.
  eapply derivable_pt_lim_ext; [|eapply dlim_eq; [exact D|]].
  - intros z. unfold hedge, minus_fct, opp_fct, mult_real_fct, mult_fct, comp, fct_cte, id.
    ring.
  - unfold hedge', id. field. lra.
Qed.

Lemma hedge_nonneg : forall t, 0 <= t < 1 -> 0 <= hedge t.
Proof.
  intros t Ht. destruct (Rle_lt_or_eq_dec 0 t (proj1 Ht)) as [Hpos|Hz].
  - destruct (MVT_cor2 hedge hedge' 0 t Hpos) as [c [Hc Hcin]].
    { intros c Hcin. apply hedge_deriv. lra. }
    assert (E0 : hedge 0 = 0) by (unfold hedge; rewrite Rminus_0_r, ln_1; ring).
    assert (E : hedge' c = (1 - 4 * c * (1 - c)) / (1 - c)) by (unfold hedge'; field; lra).
    assert (Hk : 0 <= (1 - 4 * c * (1 - c)) / (1 - c)).
    { unfold Rdiv. apply Rmult_le_pos; [apply quarter_bound|].
      apply Rlt_le, Rinv_0_lt_compat. lra. }
    rewrite E, E0 in Hc.
    assert (0 <= (1 - 4 * c * (1 - c)) / (1 - c) * (t - 0)) by (apply Rmult_le_pos; lra).
    lra.
  - subst t. unfold hedge. rewrite Rminus_0_r, ln_1. lra.
Qed.

(** Binary KL divergence kl(p || q) of Bernoulli(p) from Bernoulli(q). *)
Definition kl2 (p q : R) : R := p * ln (p / q) + (1 - p) * ln ((1 - p) / (1 - q)).

Lemma kl2_edge0 : forall q, 0 <= q < 1 -> 2 * (0 - q) ^ 2 <= kl2 0 q.
Proof.
  intros q Hq. unfold kl2. rewrite Rminus_0_r.
  replace (1 / (1 - q)) with (/ (1 - q)) by (field; lra).
  rewrite ln_Rinv by lra. pose proof (hedge_nonneg q Hq) as H. unfold hedge in H.
  replace (2 * (0 - q) ^ 2) with (2 * (q * q)) by ring. lra.
Qed.

Lemma kl2_sym : forall p q, kl2 p q = kl2 (1 - p) (1 - q).
Proof.
  intros p q. unfold kl2. replace (1 - (1 - p)) with p by ring.
  replace (1 - (1 - q)) with q by ring. ring.
Qed.

(** BINARY PINSKER: for p, q in [0,1] with kl(p||q) finite (q = 0 only if p = 0 and
    q = 1 only if p = 1):  kl(p || q) >= 2 (p - q)^2. *)
Theorem pinsker_binary : forall p q, 0 <= p <= 1 -> 0 <= q <= 1 ->
  (0 < p -> 0 < q) -> (0 < 1 - p -> 0 < 1 - q) -> 2 * (p - q) ^ 2 <= kl2 p q.
Proof.
  intros p q Hp Hq H0 H1.
  destruct (Rle_lt_or_eq_dec 0 p (proj1 Hp)) as [Hp0|Hp0].
  - destruct (Rle_lt_or_eq_dec p 1 (proj2 Hp)) as [Hp1|Hp1].
    + (* interior: kl(p||q) = g_p(q) - g_p(p) + 2 (p-q)^2 *)
      specialize (H0 Hp0). specialize (H1 ltac:(lra)).
      assert (E : kl2 p q = gbin p q - gbin p p + 2 * (p - q) ^ 2).
      { unfold kl2, gbin. rewrite (xlog_split p q), (xlog_split (1 - p) (1 - q)) by lra.
        ring. }
      rewrite E. pose proof (gbin_min p q ltac:(lra) ltac:(lra)). lra.
    + (* p = 1: by symmetry, the edge case at 0 *)
      subst p. rewrite kl2_sym. replace (1 - 1) with 0 by ring.
      replace (2 * (1 - q) ^ 2) with (2 * (0 - (1 - q)) ^ 2) by ring.
      apply kl2_edge0. specialize (H0 ltac:(lra)). lra.
  - subst p. apply kl2_edge0. specialize (H1 ltac:(lra)). lra.
Qed.

(** ** The log-sum inequality. *)

(** sum_i p_i ln(p_i / q_i) >= (sum_i p_i) ln(sum_i p_i / sum_i q_i). *)
Theorem log_sum : forall l, admissible l -> sp l * ln (sp l / sq l) <= KL l.
Proof.
  intros l Hl.
  assert (Hp0 : forall pq, In pq l -> 0 <= fst pq) by (intros pq H; apply (Hl pq H)).
  assert (Hq0 : forall pq, In pq l -> 0 <= snd pq) by (intros pq H; apply (Hl pq H)).
  assert (HP : 0 <= sp l) by (apply sum_nonneg; exact Hp0).
  destruct (Rle_lt_or_eq_dec 0 (sp l) HP) as [Hpos|Hz].
  - (* sp l > 0: some p_i > 0, so q_i > 0 and sq l > 0 *)
    destruct (sum_pos_exists l fst Hpos) as [pq0 [Hin0 Hpq0]].
    assert (Hqpos : 0 < sq l).
    { pose proof (sum_ge_term l snd pq0 Hq0 Hin0). pose proof (proj2 (proj2 (Hl _ Hin0)) Hpq0).
      unfold sq. lra. }
    set (r := sp l / sq l).
    assert (Hr : 0 < r) by (unfold r, Rdiv; apply Rmult_lt_0_compat; [lra| apply Rinv_0_lt_compat; lra]).
    (* termwise: p ln(p/q) - p ln r = p ln(p/(r q)) >= p - r q *)
    assert (Ht : sum l (fun pq => fst pq - r * snd pq) <=
                 sum l (fun pq => fst pq * ln (fst pq / snd pq) - fst pq * ln r)).
    { apply sum_le. intros [p q] Hin. destruct (Hl _ Hin) as [Hp [Hq Hpq]]. simpl in *.
      rewrite <- xlog_div_mult by (auto; intros H; split; auto).
      apply xlog_ge; auto.
      - apply Rmult_le_pos; lra.
      - intros H. apply Rmult_lt_0_compat; auto. }
    rewrite !sum_minus, sum_scal_l, sum_scal_r in Ht. fold (KL l) (sp l) (sq l) in Ht.
    assert (E : r * sq l = sp l) by (unfold r; field; lra).
    lra.
  - (* sp l = 0: every p_i = 0, both sides are 0 *)
    rewrite <- Hz, Rmult_0_l. unfold KL. rewrite sum_zero; [lra|].
    intros pq Hin. rewrite (sum_nonneg_zero l fst Hp0 (eq_sym Hz) pq Hin). ring.
Qed.

(** ** Splitting a list along a boolean test. *)

Lemma sum_partition {X : Type} (l : list X) (b : X -> bool) f :
  sum l f = sum (filter b l) f + sum (filter (fun x => negb (b x)) l) f.
Proof.
  induction l as [|x t IH]; simpl; [ring|].
  destruct (b x); simpl; rewrite IH; ring.
Qed.

Lemma admissible_filter : forall l b, admissible l -> admissible (filter b l).
Proof. intros l b Hl pq Hin. apply filter_In in Hin. apply Hl, Hin. Qed.

Lemma sp_pos_sq_pos : forall l, admissible l -> 0 < sp l -> 0 < sq l.
Proof.
  intros l Hl Hpos. destruct (sum_pos_exists l fst Hpos) as [pq0 [Hin0 Hpq0]].
  pose proof (sum_ge_term l snd pq0 (fun pq H => proj1 (proj2 (Hl pq H))) Hin0).
  pose proof (proj2 (proj2 (Hl _ Hin0)) Hpq0). unfold sq. lra.
Qed.

(** ** Total variation and Pinsker's inequality. *)

(** TV(p, q) = (1/2) sum_i |p_i - q_i|. *)
Definition TV (l : list (R * R)) : R := / 2 * sum l (fun pq => Rabs (fst pq - snd pq)).

Lemma TV_nonneg : forall l, 0 <= TV l.
Proof.
  intros l. unfold TV. apply Rmult_le_pos; [lra|].
  apply sum_nonneg. intros; apply Rabs_pos.
Qed.

(** The event E = { i : q_i <= p_i }. *)
Definition evE (pq : R * R) : bool := if Rle_dec (snd pq) (fst pq) then true else false.

(** PINSKER: for probability vectors p, q with KL(p||q) finite,
    2 TV(p, q)^2 <= KL(p || q). *)
Theorem pinsker : forall l, admissible l -> sp l = 1 -> sq l = 1 -> 2 * TV l ^ 2 <= KL l.
Proof.
  intros l Hl Hp Hq.
  set (lE := filter evE l). set (lF := filter (fun x => negb (evE x)) l).
  assert (HE : admissible lE) by apply admissible_filter, Hl.
  assert (HF : admissible lF) by apply admissible_filter, Hl.
  assert (EP : sp l = sp lE + sp lF) by apply sum_partition.
  assert (EQ : sq l = sq lE + sq lF) by apply sum_partition.
  assert (EK : KL l = KL lE + KL lF) by apply sum_partition.
  assert (HPE : 0 <= sp lE) by (apply sum_nonneg; intros pq H; apply (HE pq H)).
  assert (HPF : 0 <= sp lF) by (apply sum_nonneg; intros pq H; apply (HF pq H)).
  assert (HQE : 0 <= sq lE) by (apply sum_nonneg; intros pq H; apply (HE pq H)).
  assert (HQF : 0 <= sq lF) by (apply sum_nonneg; intros pq H; apply (HF pq H)).
  (* TV = P(E) - Q(E) *)
  assert (ETV : TV l = sp lE - sq lE).
  { unfold TV. rewrite (sum_partition l evE).
    rewrite (sum_ext (filter evE l) _ (fun pq => fst pq - snd pq)).
    2:{ intros pq Hin. apply filter_In in Hin. destruct Hin as [_ Hb]. unfold evE in Hb.
        destruct (Rle_dec (snd pq) (fst pq)) as [H|H]; [|discriminate].
        apply Rabs_right. lra. }
    rewrite (sum_ext (filter (fun x => negb (evE x)) l) _ (fun pq => snd pq - fst pq)).
    2:{ intros pq Hin. apply filter_In in Hin. destruct Hin as [_ Hb]. unfold evE in Hb.
        destruct (Rle_dec (snd pq) (fst pq)) as [H|H]; [discriminate|].
        rewrite Rabs_left by lra. ring. }
    rewrite !sum_minus. fold lE lF. unfold sp, sq in *. lra. }
  (* KL >= kl(P(E) || Q(E)) by the log-sum inequality on E and on its complement *)
  pose proof (log_sum lE HE) as LE. pose proof (log_sum lF HF) as LF.
  assert (EF1 : sp lF = 1 - sp lE) by lra. assert (EF2 : sq lF = 1 - sq lE) by lra.
  rewrite EF1, EF2 in LF.
  pose proof (pinsker_binary (sp lE) (sq lE) ltac:(lra) ltac:(lra)
                (sp_pos_sq_pos lE HE)
                (fun H => eq_ind _ (fun z => 0 < z) (sp_pos_sq_pos lF HF ltac:(lra)) _ EF2))
    as B.
  unfold kl2 in B. rewrite ETV. lra.
Qed.

(** ** The margin lemma. *)

(** Two distinct members of a list contribute at most the whole (non-negative) sum. *)
Lemma sum_two_le {X : Type} (xs : list X) (f : X -> R) a b :
  (forall x, In x xs -> 0 <= f x) -> In a xs -> In b xs -> b <> a -> f a + f b <= sum xs f.
Proof.
  induction xs as [|x t IH]; simpl; intros H0 Ha Hb Hne; [contradiction|].
  assert (Ht : forall y, In y t -> 0 <= f y) by auto.
  pose proof (H0 x (or_introl eq_refl)) as Hx.
  destruct Ha as [<-|Ha].
  - destruct Hb as [<-|Hb]; [congruence|]. pose proof (sum_ge_term t f b Ht Hb). lra.
  - destruct Hb as [<-|Hb].
    + pose proof (sum_ge_term t f a Ht Ha). lra.
    + pose proof (IH Ht Ha Hb Hne). lra.
Qed.

(** MARGIN LEMMA: over outcomes xs, if p_a - p_b >= gamma for every other outcome b and
    TV(p, q) < gamma / 2, then q_a > q_b for every other b (q's argmax is p's). *)
Theorem tv_margin : forall (X : Type) (xs : list X) (p q : X -> R) (a : X) (gamma : R),
  In a xs ->
  (forall b, In b xs -> b <> a -> gamma <= p a - p b) ->
  TV (map (fun x => (p x, q x)) xs) < gamma / 2 ->
  forall b, In b xs -> b <> a -> q b < q a.
Proof.
  intros X xs p q a gamma Ha Hgap Htv b Hb Hne.
  unfold TV in Htv. rewrite sum_map in Htv. cbn [fst snd] in Htv.
  pose proof (sum_two_le xs (fun x => Rabs (p x - q x)) a b
                (fun x _ => Rabs_pos _) Ha Hb Hne) as H2.
  cbv beta in H2. pose proof (Hgap b Hb Hne) as Hg.
  pose proof (Rle_abs (p a - q a)) as Ea.
  pose proof (Rle_abs (- (p b - q b))) as Eb. rewrite Rabs_Ropp in Eb.
  lra.
Qed.

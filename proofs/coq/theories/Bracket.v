(** * The bracket: a small KL(P || Q) forces the model's greedy choice at a prefix.

    Row-level Pinsker at a prefix u with P(u) > 0, and THEORY §5:
    KL(P || Q) < P(u) gamma^2 / 2 together with a margin gamma of p(.|u) at a
    forces argmax_o q(o|u) = a. *)
Require Import Reals Lra List.
Require Import Nonid.LnIneq Nonid.Sums Nonid.Gibbs Nonid.Pinsker Nonid.ChainRule.
Open Scope R_scope.

Section Bracket.
Variable A : Type.
Variable alph : list A.

(** NoDup alph gives NoDup Omega (None is not a [Some _]; [Some] is injective). *)
Lemma Omega_NoDup : NoDup alph -> NoDup (Omega A alph).
Proof.
  intros Hn. unfold Omega. constructor.
  - intros Hin. apply in_map_iff in Hin. destruct Hin as [x [E _]]. discriminate.
  - induction Hn as [|x t Hx Ht IH]; simpl; constructor; [|exact IH].
    intros Hin. apply in_map_iff in Hin. destruct Hin as [y [E Hy]].
    injection E as ->. contradiction.
Qed.

(** The pair vector (p(o|u), q(o|u)) over o in Omega. *)
Definition rowvec (L : nat) (P : list A -> R) (q : model A) (u : list A) : list (R * R) :=
  map (fun o => (cond A alph L P u o, q u o)) (Omega A alph).

(** TV(p(.|u), q(.|u)) = (1/2) sum_{o in Omega} |p(o|u) - q(o|u)|. *)
Definition TVrow (L : nat) (P : list A -> R) (q : model A) (u : list A) : R :=
  / 2 * sum (Omega A alph) (fun o => Rabs (cond A alph L P u o - q u o)).

Lemma TVrow_eq : forall L P q u, TVrow L P q u = TV (rowvec L P q u).
Proof. intros. unfold TVrow, TV, rowvec. rewrite sum_map. reflexivity. Qed.

Lemma KLrow_eq : forall L P q u, KLrow A alph L P q u = KL (rowvec L P q u).
Proof. intros. unfold KLrow, KL, rowvec. rewrite sum_map. reflexivity. Qed.

(** At a prefix with P(u) > 0 the row vector is admissible and p(.|u) sums to 1. *)
Lemma rowvec_admissible : forall L P q u, dist A alph L P -> qnn A q -> posQ A P q ->
  In u (words A alph L) -> 0 < mb A alph L P u -> admissible (rowvec L P q u).
Proof.
  intros L P q u [Hm [Hs H1]] Hq H Hu Hpos pq Hin. unfold rowvec in Hin.
  apply in_map_iff in Hin. destruct Hin as [o [<- Ho]]. simpl. unfold cond.
  pose proof (mo_nonneg A alph L P u o Hm).
  assert (0 < / mb A alph L P u) by (apply Rinv_0_lt_compat; exact Hpos).
  split; [apply Rmult_le_pos; lra|]. split; [apply Hq|].
  intros Hc. apply (row_pos A alph L P q u o); auto.
  destruct (Rle_lt_or_eq_dec 0 (mo A alph L P u o) (mo_nonneg A alph L P u o Hm)) as [Hlt|Heq];
    [exact Hlt|]. unfold Rdiv in Hc. rewrite <- Heq, Rmult_0_l in Hc. lra.
Qed.

Lemma rowvec_sp : forall L P q u, dist A alph L P -> 0 < mb A alph L P u ->
  sp (rowvec L P q u) = 1.
Proof.
  intros L P q u [Hm [Hs H1]] Hpos. unfold sp, rowvec. rewrite sum_map. cbn [fst].
  unfold cond, Rdiv. rewrite sum_scal_r.
  change (sum (Omega A alph) (fun x => mo A alph L P u x)) with (sum (Omega A alph) (mo A alph L P u)).
  rewrite mb_split by exact Hs. field. lra.
Qed.

(** ROW PINSKER: at a prefix u with P(u) > 0 and a model row summing to 1,
    2 TV(p(.|u), q(.|u))^2 <= KL(p(.|u) || q(.|u)). *)
Theorem pinsker_row : forall L P q u, dist A alph L P -> qnn A q -> posQ A P q ->
  In u (words A alph L) -> 0 < mb A alph L P u -> sum (Omega A alph) (q u) = 1 ->
  2 * TVrow L P q u ^ 2 <= KLrow A alph L P q u.
Proof.
  intros L P q u HP Hq H Hu Hpos Hrow. rewrite TVrow_eq, KLrow_eq.
  apply pinsker.
  - apply rowvec_admissible; assumption.
  - apply rowvec_sp; assumption.
  - unfold sq, rowvec. rewrite sum_map. exact Hrow.
Qed.

(** GREEDY IDENTIFICATION (THEORY §5): if p(.|u) has margin gamma > 0 at a
    (p(a|u) - p(b|u) >= gamma for every other b) and KL(P || Q) < P(u) gamma^2 / 2,
    then q(b|u) < q(a|u) for every other b: Q's argmax at u is P's. *)
Theorem greedy_identified : forall L P q u a gamma,
  dist A alph L P -> qnn A q -> posQ A P q -> rows_le1 A alph q ->
  In u (words A alph L) -> 0 < mb A alph L P u -> sum (Omega A alph) (q u) = 1 ->
  In a (Omega A alph) -> 0 < gamma ->
  (forall b, In b (Omega A alph) -> b <> a -> gamma <= cond A alph L P u a - cond A alph L P u b) ->
  KLseq A alph L P q < mb A alph L P u * gamma ^ 2 / 2 ->
  forall b, In b (Omega A alph) -> b <> a -> q u b < q u a.
Proof.
  intros L P q u a gamma HP Hq H Hr Hu Hpos Hrow Ha Hg Hgap Hkl.
  (* bracket step: P(u) KLrow <= KL(P||Q) < P(u) gamma^2/2, so KLrow < gamma^2/2 *)
  pose proof (bracket_step A alph L P q u HP Hq H Hr Hu) as Hb.
  assert (Hk : KLrow A alph L P q u < gamma ^ 2 / 2).
  { apply (Rmult_lt_reg_l (mb A alph L P u)); [exact Hpos|]. lra. }
  (* row Pinsker: 2 TV^2 < gamma^2, so TV < gamma / 2 *)
  pose proof (pinsker_row L P q u HP Hq H Hu Hpos Hrow) as Hpin.
  pose proof (TV_nonneg (rowvec L P q u)) as Htv0. rewrite <- TVrow_eq in Htv0.
  assert (Htv : TVrow L P q u < gamma / 2).
  { destruct (Rlt_le_dec (TVrow L P q u) (gamma / 2)) as [Hlt|Hge]; [exact Hlt|].
    exfalso.
    assert (gamma / 2 * (gamma / 2) <= TVrow L P q u * TVrow L P q u)
      by (apply Rmult_le_compat; lra).
    replace (TVrow L P q u ^ 2) with (TVrow L P q u * TVrow L P q u) in Hpin by ring.
    replace (gamma ^ 2) with (gamma * gamma) in Hk by ring.
    lra. }
  (* margin lemma on Omega *)
  rewrite TVrow_eq in Htv. unfold rowvec in Htv.
  exact (tv_margin (option A) (Omega A alph) (cond A alph L P u) (q u) a gamma Ha Hgap Htv).
Qed.

End Bracket.

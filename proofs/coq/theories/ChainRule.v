(** * The chain rule for autoregressive models, Lemma A, the bracket step.

    Alphabet: any type [A] with a list [alph] (finiteness: every letter is in it, used
    only by [words_complete]).  Output symbols: [option A], [None] = EOS.
    A word x : list A stands for the sequence x followed by EOS.
    A data distribution P : list A -> R has support in words of length <= L
    ([supp_in L P]); [words L] enumerates all words of length <= L.
    A model q : list A -> option A -> R gives the next-symbol row q(. | u). *)
Require Import Reals Lra Lia List.
Import ListNotations.
Require Import Nonid.LnIneq Nonid.Sums Nonid.Gibbs.
Open Scope R_scope.

Section Chain.
Variable A : Type.
Variable alph : list A.

Definition model := list A -> option A -> R.
Definition Omega : list (option A) := None :: map Some alph.

(** Q(x) = q(x_1|<>) q(x_2|x_1) ... q(EOS|x), written recursively with the shifted model. *)
Definition shq (q : model) (a : A) : model := fun u o => q (a :: u) o.
Fixpoint Q (q : model) (x : list A) : R :=
  match x with
  | [] => q [] None
  | a :: y => q [] (Some a) * Q (shq q a) y
  end.

(** The explicit product  prod_t q(x_t | u ++ x_<t) * q(EOS | u ++ x). *)
Fixpoint prodAR (q : model) (u : list A) (x : list A) : R :=
  match x with
  | [] => q u None
  | a :: y => q u (Some a) * prodAR q (u ++ [a]) y
  end.

Lemma Q_ext : forall x q q', (forall u o, q u o = q' u o) -> Q q x = Q q' x.
Proof.
  induction x as [|a y IH]; intros q q' H; simpl; [apply H|].
  rewrite H. f_equal. apply IH. intros; apply H.
Qed.

Lemma prodAR_Q : forall x q u, prodAR q u x = Q (fun v o => q (u ++ v) o) x.
Proof.
  induction x as [|a y IH]; intros q u; simpl; [rewrite app_nil_r; reflexivity|].
  rewrite app_nil_r, IH. f_equal. apply Q_ext. intros v o. unfold shq.
  rewrite <- app_assoc. reflexivity.
Qed.

Theorem Q_is_product : forall q x, Q q x = prodAR q [] x.
Proof. intros. rewrite prodAR_Q. apply Q_ext. reflexivity. Qed.

(** All words of length <= n. *)
Fixpoint words (n : nat) : list (list A) :=
  match n with
  | O => [[]]
  | S k => [] :: flat_map (fun a => map (cons a) (words k)) alph
  end.

Lemma words_length : forall n u, In u (words n) -> (length u <= n)%nat.
Proof.
  induction n as [|n IH]; simpl; intros u Hin.
  - destruct Hin as [<-|[]]. simpl; lia.
  - destruct Hin as [<-|Hin]; [simpl; lia|].
    apply in_flat_map in Hin. destruct Hin as [a [_ Hin]].
    apply in_map_iff in Hin. destruct Hin as [v [<- Hv]]. simpl. apply IH in Hv. lia.
Qed.

Lemma words_complete : (forall a, In a alph) ->
  forall n u, (length u <= n)%nat -> In u (words n).
Proof.
  intros Hall. induction n as [|n IH]; intros u Hl.
  - destruct u; [left; reflexivity| simpl in Hl; lia].
  - destruct u as [|a v]; [left; reflexivity|]. right.
    apply in_flat_map. exists a. split; [apply Hall|].
    apply in_map. apply IH. simpl in Hl; lia.
Qed.

Lemma NoDup_app_disjoint {X : Type} : forall (l1 l2 : list X),
  NoDup l1 -> NoDup l2 -> (forall x, In x l1 -> ~ In x l2) -> NoDup (l1 ++ l2).
Proof.
  induction l1 as [|x t IH]; simpl; intros l2 H1 H2 Hd; [exact H2|].
  inversion H1 as [|? ? Hx Ht]; subst. constructor.
  - rewrite in_app_iff. intros [Hin|Hin]; [contradiction| exact (Hd x (or_introl eq_refl) Hin)].
  - apply IH; auto.
Qed.

Lemma NoDup_map_cons : forall (a : A) (l : list (list A)), NoDup l -> NoDup (map (cons a) l).
Proof.
  intros a l. induction l as [|v t IH]; simpl; intros H; [constructor|].
  inversion H as [|? ? Hv Ht]; subst. constructor; [|auto].
  intros Hin. apply in_map_iff in Hin. destruct Hin as [w [E Hw]]. injection E as ->. contradiction.
Qed.

Lemma NoDup_flat_map_cons : forall (W : list (list A)) (l : list A),
  NoDup W -> NoDup l -> NoDup (flat_map (fun a => map (cons a) W) l).
Proof.
  intros W l HW Hl. induction Hl as [|a t Hat Ht IHt]; simpl; [constructor|].
  apply NoDup_app_disjoint; [apply NoDup_map_cons; exact HW| exact IHt|].
  intros x Hx Hin. apply in_map_iff in Hx. destruct Hx as [v [<- _]].
  apply in_flat_map in Hin. destruct Hin as [b [Hb Hin]].
  apply in_map_iff in Hin. destruct Hin as [w [E _]]. injection E as <- _. contradiction.
Qed.

(** Each word of length <= n is listed once (with [words_complete]: [words n] enumerates the set). *)
Lemma words_NoDup : NoDup alph -> forall n, NoDup (words n).
Proof.
  intros Ha n. induction n as [|n IH]; simpl.
  - constructor; [intros []| constructor].
  - constructor.
    + intros Hin. apply in_flat_map in Hin. destruct Hin as [a [_ Hin]].
      apply in_map_iff in Hin. destruct Hin as [v [E _]]. discriminate.
    + apply NoDup_flat_map_cons; assumption.
Qed.
Lemma sum_words_S : forall n f,
  sum (words (S n)) f = f [] + sum alph (fun a => sum (words n) (fun v => f (a :: v))).
Proof.
  intros n f. simpl. rewrite sum_flat_map. f_equal. apply sum_ext. intros a _.
  apply sum_map.
Qed.

Definition supp_in (n : nat) (m : list A -> R) : Prop :=
  forall x, (n < length x)%nat -> m x = 0.
Definition nonneg (m : list A -> R) : Prop := forall x, 0 <= m x.

Lemma words_horizon : forall n g, supp_in n g -> sum (words (S n)) g = sum (words n) g.
Proof.
  induction n as [|n IH]; intros g Hg.
  - rewrite sum_words_S. simpl. rewrite (sum_zero alph).
    + ring.
    + intros a _. rewrite Hg by (simpl; lia). ring.
  - rewrite sum_words_S, (sum_words_S n). f_equal. apply sum_ext. intros a _.
    apply IH. intros x Hx. apply Hg. simpl. lia.
Qed.

(** Prefix masses and the node term. *)
Definition mb (n : nat) (m : list A -> R) (u : list A) : R :=
  sum (words n) (fun y => m (u ++ y)).
Definition mo (n : nat) (m : list A -> R) (u : list A) (o : option A) : R :=
  match o with None => m u | Some a => mb n m (u ++ [a]) end.
(** node u = P(u) KL(p(.|u) || q(.|u)) written without division by P(u). *)
Definition node (n : nat) (m : list A -> R) (q : model) (u : list A) : R :=
  sum Omega (fun o => mo n m u o * ln (mo n m u o / (mb n m u * q u o))).
Definition KLs (n : nat) (m : list A -> R) (q : model) : R :=
  sum (words n) (fun x => m x * ln (m x / Q q x)).

Definition shm (m : list A -> R) (a : A) : list A -> R := fun y => m (a :: y).

Lemma supp_shift : forall n m a, supp_in (S n) m -> supp_in n (shm m a).
Proof. intros n m a H x Hx. apply H. simpl. lia. Qed.

Lemma mb_shift : forall n m a w, supp_in (S n) m -> mb (S n) m (a :: w) = mb n (shm m a) w.
Proof.
  intros n m a w H. unfold mb, shm.
  assert (Hg : supp_in n (fun y => m (a :: w ++ y))).
  { intros x Hx. apply H. simpl. rewrite app_length. lia. }
  exact (words_horizon n _ Hg).
Qed.

Lemma mo_shift : forall n m a w o, supp_in (S n) m -> mo (S n) m (a :: w) o = mo n (shm m a) w o.
Proof. intros n m a w [b|] H; simpl; [|reflexivity]. apply mb_shift; exact H. Qed.

Lemma node_shift : forall n m q a w, supp_in (S n) m ->
  node (S n) m q (a :: w) = node n (shm m a) (shq q a) w.
Proof.
  intros n m q a w H. unfold node. apply sum_ext. intros o _.
  rewrite mo_shift, mb_shift by exact H. reflexivity.
Qed.

Lemma mb_nonneg : forall n m u, nonneg m -> 0 <= mb n m u.
Proof. intros. unfold mb. apply sum_nonneg. intros; apply H. Qed.

Lemma mo_nonneg : forall n m u o, nonneg m -> 0 <= mo n m u o.
Proof. intros n m u [b|] H; simpl; [apply mb_nonneg; exact H| apply H]. Qed.

(** sum_o P(u o) = P(u). *)
Lemma mb_split : forall n m u, supp_in n m -> sum Omega (mo n m u) = mb n m u.
Proof.
  intros n m u H. unfold Omega. simpl. rewrite sum_map. simpl.
  transitivity (sum (words (S n)) (fun y => m (u ++ y))).
  - rewrite sum_words_S, app_nil_r. f_equal. apply sum_ext. intros a _.
    unfold mb. apply sum_ext. intros y _. rewrite <- app_assoc. reflexivity.
  - unfold mb. apply words_horizon. intros x Hx. apply H. rewrite app_length. lia.
Qed.

Lemma mo_le_mb : forall n m u o, nonneg m -> supp_in n m -> In o Omega -> mo n m u o <= mb n m u.
Proof.
  intros n m u o Hm Hs Hin. rewrite <- (mb_split n m u Hs).
  apply sum_ge_term; [|exact Hin]. intros; apply mo_nonneg; exact Hm.
Qed.

Definition qnn (q : model) : Prop := forall u o, 0 <= q u o.
(** KL(P||Q) finite: Q(x) > 0 wherever P(x) > 0. *)
Definition posQ (m : list A -> R) (q : model) : Prop := forall x, 0 < m x -> 0 < Q q x.

Lemma nonneg_shift : forall m a, nonneg m -> nonneg (shm m a).
Proof. intros m a H y. apply H. Qed.

Lemma qnn_shift : forall q a, qnn q -> qnn (shq q a).
Proof. intros q a H u o. apply H. Qed.

Lemma posQ_shift : forall m q a, qnn q -> posQ m q -> posQ (shm m a) (shq q a).
Proof.
  intros m q a Hq H y Hy. specialize (H (a :: y) Hy). simpl in H.
  eapply pos_factor_r; [apply Hq| exact H].
Qed.

Lemma root_pos : forall n m q o, qnn q -> posQ m q -> 0 < mo n m [] o -> 0 < q [] o.
Proof.
  intros n m q [a|] Hq H Hpos; simpl in Hpos.
  - unfold mb in Hpos. apply sum_pos_exists in Hpos. destruct Hpos as [y [_ Hy]].
    specialize (H _ Hy). simpl in H. eapply pos_factor_l; [apply Hq| exact H].
  - apply H in Hpos. exact Hpos.
Qed.

(** Rows are positive wherever the data put mass on the next symbol. *)
Lemma row_pos : forall n m q u o, supp_in n m -> qnn q -> posQ m q -> In u (words n) ->
  0 < mo n m u o -> 0 < q u o.
Proof.
  induction n as [|n IH]; intros m q u o Hs Hq H Hin Hpos.
  - destruct Hin as [<-|[]]. eapply root_pos; eauto.
  - destruct Hin as [<-|Hin]; [eapply root_pos; eauto|].
    apply in_flat_map in Hin. destruct Hin as [a [_ Hin]].
    apply in_map_iff in Hin. destruct Hin as [v [<- Hv]].
    rewrite mo_shift in Hpos by exact Hs.
    apply (IH (shm m a) (shq q a) v o); auto using supp_shift, posQ_shift, qnn_shift, nonneg_shift.
Qed.

Lemma node_root : forall n m q, nonneg m -> supp_in n m -> qnn q -> posQ m q ->
  node n m q [] = sum Omega (fun o => mo n m [] o * ln (mo n m [] o / q [] o))
                  - mb n m [] * ln (mb n m []).
Proof.
  intros n m q Hm Hs Hq H. unfold node.
  rewrite (sum_ext _ _ (fun o => mo n m [] o * ln (mo n m [] o / q [] o)
                                 - mo n m [] o * ln (mb n m []))).
  - rewrite sum_minus, sum_scal_r, mb_split by exact Hs. reflexivity.
  - intros o Ho. apply xlog_div_mult; [apply mo_nonneg; exact Hm|]. intros Hpos. split.
    + pose proof (mo_le_mb n m [] o Hm Hs Ho). lra.
    + eapply root_pos; eauto.
Qed.

(** Chain rule, unnormalised form, by induction on the horizon n (node step + base). *)
Theorem chain_unnorm : forall n m q, nonneg m -> supp_in n m -> qnn q -> posQ m q ->
  KLs n m q = mb n m [] * ln (mb n m []) + sum (words n) (node n m q).
Proof.
  induction n as [|n IH]; intros m q Hm Hs Hq H.
  - unfold KLs. cbn [words sum]. rewrite node_root by assumption.
    unfold Omega. cbn [sum]. rewrite sum_map, (sum_zero alph).
    + cbn [mo Q]. ring.
    + intros a _. cbn [mo]. unfold mb. cbn [words sum app]. rewrite Hs by (simpl; lia). ring.
  - rewrite sum_words_S. rewrite node_root by assumption.
    unfold KLs. rewrite sum_words_S. cbv beta.
    unfold Omega. cbn [sum]. rewrite sum_map.
    (* the subtrees *)
    assert (Ea : forall a, In a alph ->
      sum (words n) (fun v => m (a :: v) * ln (m (a :: v) / Q q (a :: v))) =
      mb n (shm m a) [] * ln (mb n (shm m a) []) + sum (words n) (node n (shm m a) (shq q a))
      - mb n (shm m a) [] * ln (q [] (Some a))).
    { intros a _. rewrite <- IH by auto using supp_shift, posQ_shift, qnn_shift, nonneg_shift.
      unfold KLs. simpl Q.
      rewrite (sum_ext _ _ (fun v => shm m a v * ln (shm m a v / Q (shq q a) v)
                                     - shm m a v * ln (q [] (Some a)))).
      - rewrite sum_minus, sum_scal_r. reflexivity.
      - intros v _. unfold shm. apply xlog_div_mult; [apply Hm|].
        intros Hp. specialize (H _ Hp). simpl in H. split.
        + eapply pos_factor_l; [apply Hq| exact H].
        + eapply pos_factor_r; [apply Hq| exact H]. }
    rewrite (sum_ext _ _ _ Ea).
    assert (Eb : forall a, In a alph ->
      sum (words n) (fun v => node (S n) m q (a :: v)) = sum (words n) (node n (shm m a) (shq q a))).
    { intros a _. apply sum_ext. intros v _. apply node_shift. exact Hs. }
    rewrite (sum_ext _ _ _ Eb).
    assert (Ec : forall a, In a alph ->
      mo (S n) m [] (Some a) * ln (mo (S n) m [] (Some a) / q [] (Some a)) =
      mb n (shm m a) [] * ln (mb n (shm m a) []) - mb n (shm m a) [] * ln (q [] (Some a))).
    { intros a _. simpl mo. rewrite mb_shift by exact Hs. apply xlog_split.
      - apply mb_nonneg. intro; apply Hm.
      - intros Hp. rewrite <- mb_shift in Hp by exact Hs.
        apply (root_pos (S n) m q (Some a) Hq H). exact Hp. }
    rewrite (sum_ext _ _ _ Ec).
    rewrite !sum_minus, !sum_plus. cbn [mo Q]. ring.
Qed.

(** Normalised conditionals p(o|u) = P(u o) / P(u) and the row KL. *)
Definition cond (n : nat) (m : list A -> R) (u : list A) (o : option A) : R :=
  mo n m u o / mb n m u.
Definition KLrow (n : nat) (m : list A -> R) (q : model) (u : list A) : R :=
  sum Omega (fun o => cond n m u o * ln (cond n m u o / q u o)).

Lemma node_eq_KLrow : forall n m q u, nonneg m -> supp_in n m ->
  node n m q u = mb n m u * KLrow n m q u.
Proof.
  intros n m q u Hm Hs. unfold node, KLrow. rewrite <- sum_scal_l.
  destruct (Rle_lt_or_eq_dec 0 (mb n m u) (mb_nonneg n m u Hm)) as [Hp|Hz].
  - apply sum_ext. intros o _. unfold cond.
    replace (mo n m u o / mb n m u / q u o) with (mo n m u o / (mb n m u * q u o))
      by (unfold Rdiv; rewrite Rinv_mult; ring).
    field. lra.
  - apply sum_ext. intros o Ho. pose proof (mo_le_mb n m u o Hm Hs Ho).
    pose proof (mo_nonneg n m u o Hm).
    assert (E : mo n m u o = 0) by lra. rewrite E, <- Hz. ring.
Qed.

(** A data distribution of horizon L: non-negative, support in words of length <= L, mass 1. *)
Definition dist (L : nat) (P : list A -> R) : Prop :=
  nonneg P /\ supp_in L P /\ sum (words L) P = 1.

(** KL(P || Q) = sum_x P(x) ln(P(x)/Q(x)). *)
Definition KLseq (L : nat) (P : list A -> R) (q : model) : R := KLs L P q.

(** THE CHAIN RULE: KL(P||Q) = sum over all u of length <= L of P(u) KL(p(.|u) || q(.|u)). *)
Theorem chain_rule : forall L P q, dist L P -> qnn q -> posQ P q ->
  KLseq L P q = sum (words L) (fun u => mb L P u * KLrow L P q u).
Proof.
  intros L P q [Hm [Hs H1]] Hq H. unfold KLseq. rewrite chain_unnorm by assumption.
  assert (E : mb L P [] = 1) by (unfold mb; exact H1).
  rewrite E, ln_1, Rmult_0_r, Rplus_0_l.
  apply sum_ext. intros u _. apply node_eq_KLrow; assumption.
Qed.

(** The support S(P) = { u : P(u) > 0 } as a sublist of [words L]. *)
Definition support (L : nat) (P : list A -> R) : list (list A) :=
  filter (fun u => if Rlt_dec 0 (mb L P u) then true else false) (words L).

Lemma support_spec : forall L P u, In u (support L P) <-> In u (words L) /\ 0 < mb L P u.
Proof.
  intros. unfold support. rewrite filter_In.
  destruct (Rlt_dec 0 (mb L P u)); intuition congruence.
Qed.

(** THE CHAIN RULE, with the sum over S(P). *)
Theorem chain_rule_support : forall L P q, dist L P -> qnn q -> posQ P q ->
  KLseq L P q = sum (support L P) (fun u => mb L P u * KLrow L P q u).
Proof.
  intros L P q HP Hq H. rewrite chain_rule by assumption. unfold support.
  rewrite sum_filter; [reflexivity|]. intros u _ Hb.
  destruct (Rlt_dec 0 (mb L P u)) as [|Hn]; [discriminate|].
  destruct HP as [Hm _]. pose proof (mb_nonneg L P u Hm).
  assert (mb L P u = 0) by lra. rewrite H1. ring.
Qed.

(** LEMMA A: two models that agree on every row at S(P) have the same KL(P || .). *)
Theorem lemma_A : forall L P q q', dist L P -> qnn q -> posQ P q -> qnn q' -> posQ P q' ->
  (forall u o, 0 < mb L P u -> q u o = q' u o) ->
  KLseq L P q = KLseq L P q'.
Proof.
  intros L P q q' HP Hq H Hq' H' Hagree.
  rewrite !chain_rule_support by assumption. apply sum_ext. intros u Hu.
  apply support_spec in Hu. destruct Hu as [_ Hu]. f_equal. unfold KLrow.
  apply sum_ext. intros o _. rewrite Hagree by exact Hu. reflexivity.
Qed.

(** Rows of the model sum to at most 1 (an AR model's rows sum to 1). *)
Definition rows_le1 (q : model) : Prop := forall u, sum Omega (q u) <= 1.

Lemma node_nonneg : forall n m q u, nonneg m -> supp_in n m -> qnn q -> posQ m q -> rows_le1 q ->
  In u (words n) -> 0 <= node n m q u.
Proof.
  intros n m q u Hm Hs Hq H Hr Hin.
  assert (Hge : sum Omega (fun o => mo n m u o - mb n m u * q u o) <= node n m q u).
  { unfold node. apply sum_le. intros o Ho. apply xlog_ge.
    - apply mo_nonneg; exact Hm.
    - apply Rmult_le_pos; [apply mb_nonneg; exact Hm| apply Hq].
    - intros Hp. apply Rmult_lt_0_compat.
      + pose proof (mo_le_mb n m u o Hm Hs Ho). lra.
      + eapply row_pos; eauto. }
  rewrite sum_minus, sum_scal_l, mb_split in Hge by exact Hs.
  pose proof (Hr u). pose proof (mb_nonneg n m u Hm).
  assert (mb n m u * sum Omega (q u) <= mb n m u * 1) by (apply Rmult_le_compat_l; lra).
  lra.
Qed.

(** Every chain-rule term is >= 0. *)
Theorem term_nonneg : forall L P q u, dist L P -> qnn q -> posQ P q -> rows_le1 q ->
  In u (words L) -> 0 <= mb L P u * KLrow L P q u.
Proof.
  intros L P q u [Hm [Hs H1]] Hq H Hr Hin. rewrite <- node_eq_KLrow by assumption.
  eapply node_nonneg; eauto.
Qed.

(** LEMMA C (sequences): KL(P || Q) >= 0. *)
Theorem lemma_C_seq : forall L P q, dist L P -> qnn q -> posQ P q -> rows_le1 q ->
  0 <= KLseq L P q.
Proof.
  intros L P q HP Hq H Hr. rewrite chain_rule by assumption.
  apply sum_nonneg. intros u Hu. apply term_nonneg; assumption.
Qed.

(** THE BRACKET STEP: KL(P || Q) >= P(u) KL(p(.|u) || q(.|u)) for every u. *)
Theorem bracket_step : forall L P q u, dist L P -> qnn q -> posQ P q -> rows_le1 q ->
  In u (words L) -> mb L P u * KLrow L P q u <= KLseq L P q.
Proof.
  intros L P q u HP Hq H Hr Hin. rewrite chain_rule by assumption.
  apply (sum_ge_term (words L) (fun u => mb L P u * KLrow L P q u) u); [|exact Hin].
  intros v Hv. apply term_nonneg; assumption.
Qed.

(** LEMMA B (sequences): KL(P || Q) = 0 iff q(.|u) = p(.|u) at every u in S(P). *)
Theorem lemma_B_seq : forall L P q, dist L P -> qnn q -> posQ P q -> rows_le1 q ->
  (KLseq L P q = 0 <->
   forall u, In u (words L) -> 0 < mb L P u -> forall o, In o Omega -> q u o = cond L P u o).
Proof.
  intros L P q HP Hq H Hr. pose proof HP as [Hm [Hs H1]].
  rewrite chain_rule by assumption. split.
  - intros H0 u Hu Hpos o Ho.
    assert (Hz : mb L P u * KLrow L P q u = 0).
    { apply (sum_nonneg_zero (words L) (fun u => mb L P u * KLrow L P q u)); auto.
      intros v Hv. apply term_nonneg; assumption. }
    assert (Hk : KLrow L P q u = 0).
    { destruct (Rmult_integral _ _ Hz) as [E|E]; [lra| exact E]. }
    set (l := map (fun o => (cond L P u o, q u o)) Omega).
    assert (Hkl : KL l = 0) by (unfold KL, l; rewrite sum_map; exact Hk).
    assert (Hadm : admissible l).
    { intros pq Hin. unfold l in Hin. apply in_map_iff in Hin.
      destruct Hin as [o' [<- Ho']]. simpl. unfold cond.
      pose proof (mo_nonneg L P u o' Hm).
      assert (0 < / mb L P u) by (apply Rinv_0_lt_compat; exact Hpos).
      split; [apply Rmult_le_pos; lra|]. split; [apply Hq|].
      intros Hc. apply (row_pos L P q u o'); auto.
      destruct (Rle_lt_or_eq_dec 0 (mo L P u o') (mo_nonneg L P u o' Hm)) as [Hlt|Heq];
        [exact Hlt|]. unfold Rdiv in Hc. rewrite <- Heq, Rmult_0_l in Hc. lra. }
    assert (Hsp : sp l = 1).
    { unfold sp, l. rewrite sum_map. cbn [fst]. unfold cond, Rdiv.
      rewrite sum_scal_r.
      change (sum Omega (fun x => mo L P u x)) with (sum Omega (mo L P u)).
      rewrite mb_split by exact Hs. field. lra. }
    assert (Hsq : sq l <= 1) by (unfold sq, l; rewrite sum_map; apply Hr).
    apply (proj1 (KL_zero_iff l Hadm Hsp Hsq) Hkl (cond L P u o, q u o)).
    unfold l. apply in_map_iff. exists o. split; [reflexivity| exact Ho].
  - intros Heq. apply sum_zero. intros u Hu.
    destruct (Rle_lt_or_eq_dec 0 (mb L P u) (mb_nonneg L P u Hm)) as [Hpos|Hz].
    + unfold KLrow. rewrite (sum_zero Omega); [ring|]. intros o Ho.
      rewrite (Heq u Hu Hpos o Ho).
      destruct (Req_dec (cond L P u o) 0) as [E|E]; [rewrite E; ring|].
      replace (cond L P u o / cond L P u o) with 1 by (field; exact E). rewrite ln_1. ring.
    + rewrite <- Hz. ring.
Qed.

End Chain.

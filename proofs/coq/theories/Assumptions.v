(** Print the axioms each main theorem depends on. *)
Require Import Nonid.LnIneq Nonid.Gibbs Nonid.ChainRule Nonid.Pinsker Nonid.Bracket.
Print Assumptions ln_le_sub_1.
Print Assumptions ln_lt_sub_1.
Print Assumptions gibbs.
Print Assumptions KL_zero_iff.
Print Assumptions KL_zero_iff_support.
Print Assumptions Q_is_product.
Print Assumptions words_complete.
Print Assumptions words_NoDup.
Print Assumptions chain_rule.
Print Assumptions chain_rule_support.
Print Assumptions lemma_A.
Print Assumptions lemma_C_seq.
Print Assumptions bracket_step.
Print Assumptions lemma_B_seq.
Print Assumptions pinsker.
Print Assumptions tv_margin.
Print Assumptions pinsker_row.
Print Assumptions greedy_identified.

"""The reference nomenclature: the codes the platform accepts per care domain and their regulated facts."""

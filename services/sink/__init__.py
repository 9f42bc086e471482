"""The sink service: exact and near-duplicate removal, decontamination, dataset shards and card (`linksyn serve sink`)."""

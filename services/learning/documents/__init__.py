"""The xAPI document resources: State, Activity Profile and Agent Profile documents, kept
per owner with optimistic concurrency (ETags), JSON merge on POST and size limits."""

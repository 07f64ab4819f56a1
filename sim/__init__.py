"""The simulated machine: allocator, page tables, schemes and the replay loop."""

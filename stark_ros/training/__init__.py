"""Training of STARK: sampler, processing, augmentation (data side); losses, actor and trainer."""

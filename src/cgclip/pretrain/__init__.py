"""Pretraining the embedded tiny CLIP on synthetic people (``cgclip pretrain-clip``): the run
(:mod:`~cgclip.pretrain.run`), its data, targets, batches, resumable state and zero-shot probes. An application
of :mod:`cgclip.clip` on :mod:`cgclip.synth` and :mod:`cgclip.captions`; nothing in the ReID path imports it."""

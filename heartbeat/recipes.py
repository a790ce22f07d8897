"""The recipes of the ablation: feature settings and training settings, by name.

Training and evaluation both read this table (training never imports evaluation). A recipe is a row in
reports/cross_device.md; `make model` trains SHIPPED_RECIPE on every database.
"""
from __future__ import annotations

import dataclasses

from .features import FeatureConfig
from .train import TrainSettings

_LOGMEL_CYCLE = FeatureConfig(kind="logmel", floor_db=50.0, norm_floor_db=3.0, cycle_states=True,
                              cycle_source="posterior")
RECIPES = {
    "ours": (FeatureConfig(), TrainSettings()),
    "floor": (FeatureConfig(floor_db=50.0), TrainSettings()),
    "channel": (FeatureConfig(floor_db=50.0), TrainSettings(augmentation="channel")),
    "specaug": (FeatureConfig(floor_db=50.0), TrainSettings(augmentation="channel", spec_augment=True)),
    "codec": (FeatureConfig(floor_db=50.0), TrainSettings(augmentation="phone")),
    "logmel": (FeatureConfig(kind="logmel", floor_db=50.0), TrainSettings(augmentation="channel")),
    "cycle": (FeatureConfig(floor_db=50.0, cycle_states=True), TrainSettings(augmentation="channel")),
    "contrastive": (FeatureConfig(floor_db=50.0), TrainSettings(augmentation="channel", pretrain_epochs=10)),
    "logmel-cycle": (FeatureConfig(kind="logmel", floor_db=50.0, cycle_states=True), TrainSettings(augmentation="channel")),
    "logmel-cycle-norm3": (FeatureConfig(kind="logmel", floor_db=50.0, norm_floor_db=3.0, cycle_states=True),
                           TrainSettings(augmentation="channel")),
    "logmel-cycle-soft": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel")),
    "epochs20": (FeatureConfig(floor_db=50.0), TrainSettings(augmentation="channel", epochs=20)),
    "baseline": (FeatureConfig(recording_norm=False),
                 TrainSettings(variant="baseline", augment_copies=0, balance="class")),
    # Audible disease only (issue: screening sensitivity): training-b's and training-e's "abnormal" is mostly
    # coronary disease that makes no sound, so their abnormal recordings leave training (their normals stay).
    "audible": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", target="audible")),
    # ... and Freq-MixStyle on the log-mel rows while training (per-frequency statistics of two windows mixed).
    "audible-mixstyle": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", target="audible", freq_mixstyle=0.7)),
    # Domain-adversarial (issue: screening sensitivity): the shipped recipe with a database-guessing head
    # behind a gradient reversal, so the pooled features stop naming the device.
    "dann": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", domain_adversarial=0.3)),
    # Synthetic diastolic murmurs (issue: the rumble of mitral stenosis) in copies of the training normals.
    "diastolic": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", diastolic=0.3)),
    # ... at a third of that weight: does the specificity cost fall faster than the murmurs heard?
    "diastolic-light": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", diastolic=0.1)),
    # Per-recording normalisation that removes what a device adds: PCEN of the mel bands instead of the log.
    "pcen": (FeatureConfig(kind="pcen", norm_floor_db=0.0, cycle_states=True, cycle_source="posterior"),
             TrainSettings(augmentation="channel")),
    # Both: the log-mel rows (the shipped recipe's, which rank best) above the PCEN rows (whose Se-0.85 cuts
    # spread least between devices), so the network can lean on either.
    "logmel-pcen": (dataclasses.replace(_LOGMEL_CYCLE, kind="logmel+pcen"), TrainSettings(augmentation="channel")),
    # Longer self-supervised pretraining (issue: screening sensitivity): SimCLR on the shipped recipe's trunk for
    # 30 epochs (the `contrastive` row had 10, on MFCC) before the supervised 10: what stays when the chain changes.
    "pretrain30": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", pretrain_epochs=30)),
    # A filterbank the network learns (issue: screening sensitivity): the power spectrum's bins in, mel
    # triangles as the starting weights (model.LearnableFilterbank), everything else as shipped.
    "filterbank": (dataclasses.replace(_LOGMEL_CYCLE, kind="spectrum"), TrainSettings(augmentation="channel")),
    # Device transfer: each augmented copy re-coloured with another database's long-term spectrum before the
    # channel chain (cache.transfer); copies aimed at a database outside training are dropped.
    "transfer": (_LOGMEL_CYCLE, TrainSettings(augmentation="transfer")),
    # Artifacts are not disease (issue: artifacts): half of each training recording's two device copies carry
    # speech, rubbing, handling, footsteps, knocks or a cough over a stretch (cache.with_artifact), label kept.
    "overlay": (_LOGMEL_CYCLE, TrainSettings(augmentation="overlay")),
    # Capacity: the shipped network with twice the filters in every block. Distillation into the small one is
    # worth it only if this ranks unseen databases better.
    "wide": (_LOGMEL_CYCLE, TrainSettings(augmentation="channel", width=2.0)),
}
# The same recipe after the segmenter was refitted on floored frame energies (beats.FLOOR_DB): its cycle
# rows no longer move with the file's rate (features differ through segmenter.json, part of the cache key).
# Run today, "logmel-cycle-soft" would compute these same features: its stored row is the old segmenter's.
RECIPES["logmel-cycle-soft2"] = RECIPES["logmel-cycle-soft"]
SHIPPED_RECIPE = "logmel-cycle-soft2"      # what `make model` trains: the ablation's choice for unseen devices

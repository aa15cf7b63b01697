"""Experiment tracking: the `logger` config group.

One event stream per run, fed by the pipeline (run start with the composed config and its tags,
final val/test/cv metrics, artifacts) and by the trainer core's per-epoch record of the neural
frameworks (train_loss, val_*, lr, seconds: the `report` callable every fit takes), fanned out
to the writers the config chose:

    csv          <run dir>/csv/epochs.csv and final.csv
    tensorboard  <run dir>/tensorboard/events.out.tfevents.* (written without TensorFlow or torch)
    mlflow       a run on a tracking server or store, the model as an MLflow pyfunc model, and a
                 parent run per sweep with the trials as its children (launcher.tracking.sweep)
    wandb        a W&B run, offline by default (no account, no network)

A writer never changes a result and never fails a run after training: its package and its
server are checked when the run starts (one `error:` line before any training), and a writer
that fails later is dropped with a warning. No tracker package is imported until a run
chooses it.
"""
from launcher.tracking.stream import WRITERS, Tracker, open_tracker

__all__ = ["WRITERS", "Tracker", "open_tracker"]

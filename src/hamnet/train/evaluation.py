"""Evaluation during training: when, on which subset (test, held-out), and the record of
the model a run yields (last.pt or the selected best.pt)."""

from __future__ import annotations

import logging

from hamnet.config import Config
from hamnet.infer.inference import evaluate_model
from hamnet.infer.settings import inference_settings
from hamnet.train import selection
from hamnet.train.checkpointing import write_epoch
from hamnet.train.session import Session
from hamnet.weights.checkpoint import load_checkpoint

log = logging.getLogger(__name__)


def evaluations(session: Session, final: bool) -> dict:
    """Test metrics (the final epoch, or monitoring / select_on=test) and held-out ones."""
    found = {}
    select_on = session.config.train.select_on
    if select_on == "heldout":
        held = evaluate(session, selection.heldout_subset(session.config.data.train_subset))
        found.update({f"heldout_{k}": v for k, v in held.items() if k in HELDOUT_KEYS})
    if final or select_on != "heldout":
        found.update(evaluate(session))
    return found


HELDOUT_KEYS = ("average_mAP", "mAP", "classification_mAP")


def complete_final_evaluation(session: Session) -> None:
    """Evaluate the last epoch when a kill or error came between saving and evaluating it."""
    last = session.records[-1] if session.records else None
    if not session.dist.is_main or last is None or "average_mAP" in last:
        return
    if int(last["epoch"]) != session.config.train.epochs:
        return
    log.info(
        "%s: evaluating epoch %d (its evaluation did not finish)", session.run_dir, last["epoch"]
    )
    record = {**last, **evaluations(session, final=True)}
    write_epoch(session, int(last["epoch"]), record, replace_last=True)


def final_result(session: Session) -> dict:
    """The record of the model the run yields, saying how it was chosen."""
    config = session.config
    select_on = config.train.select_on
    last = dict(session.records[-1]) if session.records else {}
    note = {"selected_on": select_on, "selection": selection.NOTES[select_on]}
    if config.data.train_subset == config.data.test_subset:  # train.allow_test_subset
        note["trained_on_test"] = True
    key = selection.selection_key(select_on)
    best_path = session.run_dir / "best.pt"
    if key is None or not session.dist.is_main or not best_path.is_file():
        return {**last, **note, "model": "last.pt"}
    chosen = load_checkpoint(best_path)
    epoch = int(chosen["epoch"])
    note.update(model="best.pt", selection_epoch=epoch, selection_value=chosen.get("best"))
    if select_on == "test":
        row = next((r for r in session.records if r["epoch"] == epoch), last)
        return {**row, **note}
    if epoch == last.get("epoch"):
        return {**last, **note}
    # held-out selection: the reported test number is the selected checkpoint's
    current = {k: v.clone() for k, v in session.net.state_dict().items()}
    session.net.load_state_dict(chosen["model"])
    try:
        tested = evaluate(session)
    finally:
        session.net.load_state_dict(current)
    return {**last, **tested, **note, "epoch": epoch}


def should_evaluate(config: Config, epoch: int) -> bool:
    every = config.train.eval_every
    last = epoch + 1 == config.train.epochs
    return last or (every > 0 and (epoch + 1) % every == 0)


def evaluate(session: Session, subset: str | None = None) -> dict:
    config = session.config
    evaluation = evaluate_model(
        session.net,
        session.annotations,
        session.store,
        subset=subset or config.data.test_subset,
        device=session.device,
        settings=inference_settings(config, method=session.method),
        # resident features hold the training and test videos (held-out ones stream)
        resident=session.test_features if subset is None else None,
    )
    result = evaluation.result
    return {
        "protocol": result.protocol,
        "average_mAP": result.average_mAP,
        "mAP": result.mAP,
        "tiou": result.tiou,
        "classification_mAP": evaluation.classification_map,
        "localization_source": evaluation.source,
        "rules": evaluation.rules,
    }

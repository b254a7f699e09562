"""read_curves: the lowest validation loss and overfitting after it, on curves written by hand."""

from cnnlab.analysis.curves import read_curves
from cnnlab.run.record import MetricsRow


def rows(train_losses, val_losses):
    return [MetricsRow(epoch=i + 1, lr=0.1, train_loss=t, train_acc=0.5, train_top5=None, val_loss=v, val_acc=0.5,
                       val_top5=None, epoch_time=1.0, val_time=0.1, images_per_s=100.0)
            for i, (t, v) in enumerate(zip(train_losses, val_losses))]


def test_val_loss_rising_while_train_loss_falls_is_overfitting():
    reading = read_curves(rows([1.0, 0.8, 0.6, 0.4, 0.3], [0.9, 0.7, 0.75, 0.8, 0.9]))
    assert reading.lowest_val_loss_epoch == 2 and reading.lowest_val_loss == 0.7
    assert reading.overfitting and "after epoch 2 validation loss rose from 0.7000 to 0.9000" in reading.note


def test_one_rising_epoch_at_the_end_is_not_a_trend():
    reading = read_curves(rows([1.0, 0.8, 0.6, 0.5], [0.9, 0.8, 0.7, 0.72]))
    assert reading.lowest_val_loss_epoch == 3 and not reading.overfitting


def test_both_losses_rising_is_not_overfitting():
    # training loss rising too (a too-high learning rate) is not what overfitting means
    reading = read_curves(rows([1.0, 0.8, 0.9, 1.0], [0.9, 0.7, 0.8, 0.9]))
    assert reading.lowest_val_loss_epoch == 2 and not reading.overfitting


def test_still_improving():
    reading = read_curves(rows([1.0, 0.8, 0.6], [0.9, 0.8, 0.7]))
    assert reading.lowest_val_loss_epoch == 3 and not reading.overfitting and "no sign" in reading.note

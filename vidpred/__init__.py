"""vidpred: train a next-frame predictor (ST-ResNet) on your own videos and watch how well it does.

Python API (the CLI calls exactly these):
    from vidpred import Predictor, read_video, render, evaluate, TrainRun, train_run
"""

from .data import DataConfig, WindowDataset, load_videos
from .encoding import write_mp4
from .errors import CheckpointError, OutputError, SettingError, VideoError, VidpredError
from .evaluation import evaluate
from .model import ModelConfig, STResNet
from .predict import Predictor
from .rendering import RenderSettings, render
from .runs import TrainRun
from .training import TrainConfig, train, train_run
from .video import find_videos, read_video
from .video_options import VideoOptions

__all__ = [
    "CheckpointError",
    "DataConfig",
    "ModelConfig",
    "OutputError",
    "Predictor",
    "RenderSettings",
    "STResNet",
    "SettingError",
    "TrainConfig",
    "TrainRun",
    "VideoError",
    "VideoOptions",
    "VidpredError",
    "WindowDataset",
    "evaluate",
    "find_videos",
    "load_videos",
    "read_video",
    "render",
    "train",
    "train_run",
    "write_mp4",
]
__version__ = "0.1.0"

"""``cgclip demo``: the whole product on the embedded default, offline, on a CPU (see :mod:`cgclip.demo.pipeline`)."""

from cgclip.demo.pipeline import run_demo
from cgclip.demo.settings import MODELS, WORLDS, DemoSettings, demo_settings

__all__ = ["MODELS", "WORLDS", "DemoSettings", "demo_settings", "run_demo"]

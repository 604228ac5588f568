"""What both mbrl-lib drivers (mbrl_lib_pets.py, mbrl_lib_mbpo.py) start with: their command
line and the process's seeds and threads. Runs inside mbrl-lib's venv."""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def parse_and_seed() -> tuple[argparse.Namespace, dict]:
    """--settings JSON --seed N --out FILE -> (args, settings), with torch's threads set to
    settings["threads"] and numpy's and torch's global seeds to N."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", required=True, help="JSON of the shared settings")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    settings = json.loads(args.settings)
    torch.set_num_threads(settings["threads"])
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    return args, settings

import sys
from pathlib import Path

# demo_models/ lives at the repository root, beside the package
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

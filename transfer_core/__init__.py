"""Transfer Lab's engine: transfer learning and knowledge fusion on image classification.

The package never imports Streamlit; the dashboard (app.py, pages/) and the CLI
(``python -m transfer_core``) are both thin layers over it.
"""

__version__ = "0.1.0"

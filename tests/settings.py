"""The tests' settings: the product's, with the sandbox and the development tools installed whatever DEBUG says."""

import os

os.environ["STOCKLINE_DEVTOOLS"] = "true"

from config.settings import *  # noqa: E402, F403

# Times asserted as wall-clock text hold all year in UTC; the tests of the staff's zone override it.
TIME_ZONE = "UTC"

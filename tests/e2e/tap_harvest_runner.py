"""Run the unmodified tap-harvest against a gateway: only its two hard-coded base URLs change.

``python tap_harvest_runner.py GATEWAY_URL ID_PREFIX <tap-harvest arguments>``; runs in
tap-harvest's own virtualenv (it pins its own requests), never imported by the test suite.
ID_PREFIX is where its Harvest ID calls go on the gateway: ``/id/api/v2``, or ``/api/v2`` (the
plain host swap of https://id.getharvest.com/api/v2).
"""

import sys

import tap_harvest
import tap_harvest.client

gateway = sys.argv.pop(1).rstrip("/")
tap_harvest.client.REFRESH_URL = gateway + sys.argv.pop(1)
_init = tap_harvest.client.Client.__init__


def _init_via_gateway(self, config):  # type: ignore[no-untyped-def]
    _init(self, config)
    self.base_url = gateway + "/v2"


tap_harvest.client.Client.__init__ = _init_via_gateway  # type: ignore[method-assign]
tap_harvest.main()

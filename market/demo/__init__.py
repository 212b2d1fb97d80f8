"""``gridex demo``: the whole system on one machine (see :mod:`market.demo.run`)."""

"""The bottom layer: types and helpers every other layer may use (no I/O beyond files).

* :mod:`.topology`: regions and replicas of the recommender (:class:`Topology`);
* :mod:`.validation`: every argument check, with messages naming argument, value, allowed;
* :mod:`.paths`: where caches, tools and run folders live;
* :mod:`.extras`: optional dependencies, and the install line when one is missing;
* :mod:`.yamlfile`: YAML files read with errors that name the file;
* :mod:`.guard`: the target guard (loopback only, unless a run allows other hosts);
* :mod:`.redact`: removes credentials from anything chaosrec writes;
* :mod:`.lazy`: packages' public names, loaded on first use.
"""

from chaosrec.core.topology import Replica, Topology, load_topology, parse_topology

__all__ = ["Replica", "Topology", "load_topology", "parse_topology"]

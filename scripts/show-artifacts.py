"""Print the refs of a dkb OCI layout (for `make demo`): name, digest, and what it is."""

import json
import sys

index = json.load(open(sys.argv[1]))
for m in index["manifests"]:
    name = m["annotations"]["org.opencontainers.image.ref.name"]
    kind = m.get("artifactType", "container image")
    print(f"  {name:<36} {m['digest'][:23]}…  {kind}")

"""Print OpenLineage run events from a JSON-lines file (for `make demo`): type, job, run, and the
datasets of each START (the COMPLETE/FAIL that follows names the same ones)."""

import json
import sys

for line in open(sys.argv[1]):
    event = json.loads(line)
    datasets = [f"{side[:-1]} {d['namespace']}/{d['name']}" for side in ("inputs", "outputs")
                for d in event.get(side) or []]
    print(f"  {event['eventType']:<9} {event['job']['namespace']}/{event['job']['name']}  run {event['run']['runId']}")
    for dataset in datasets if event["eventType"] == "START" else []:
        print(f"            {dataset}")

#!/usr/bin/env python3
"""Set up the workflow on the first node, as its admin: the agents, their groups, and the input.

Agents: owner (owns the input), data-loader, processor and artifact-saver
(the group "pipeline"), and analyst (the group "analysts"). The owner
stores the input, a JSON snippet of rows, and shares it with "pipeline".

Prints one JSON object: {"input_id": ..., "keys": {agent: API key}}. The
keys are shown only this once; keep them.

    ARTMESH_API=http://127.0.0.1:7581 ARTMESH_API_KEY=<admin key> python3 setup_mesh.py --rows 1,2,3,4
"""

import argparse
import asyncio
import json

import _sdk  # noqa: F401
import artmesh

AGENTS: dict[str, list[str]] = {
    "owner": [],
    "data-loader": ["pipeline"],
    "processor": ["pipeline"],
    "artifact-saver": ["pipeline"],
    "analyst": ["analysts"],
}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="1,2,3", help="the input's numbers, comma-separated")
    args = p.parse_args()
    rows = [int(x) for x in args.rows.split(",") if x.strip()]

    keys = {}
    async with artmesh.AsyncClient() as admin:  # ARTMESH_API and ARTMESH_API_KEY, or the local node
        for agent, groups in AGENTS.items():
            keys[agent] = (await admin.agents.create(agent, groups=groups)).api_key

    async with artmesh.AsyncClient(api_key=keys["owner"]) as owner:
        data = await owner.artifact.create_snippet("input.json", {"rows": rows}, metadata={"stage": "input"})
        await owner.artifact.share(data.id, with_groups=["pipeline"])

    print(json.dumps({"input_id": data.id, "keys": keys}))


if __name__ == "__main__":
    asyncio.run(main())

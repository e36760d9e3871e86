#!/usr/bin/env python3
"""A member of the group the result was shared with: list it among what is shared with it, and download it.

Prints one JSON object: the artifact's id, owner and path, and its content.

    ARTMESH_API=<node A> ARTMESH_API_KEY=<analyst's key> python3 fetch_result.py INPUT_ID --out DIR
"""

import argparse
import asyncio
import json
import os

import _sdk  # noqa: F401
import artmesh


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input_id")
    p.add_argument("--out", default=".", help="the folder to write the result to")
    args = p.parse_args()
    name = f"processed-{args.input_id}.json"

    async with artmesh.AsyncClient(consistent_reads=True) as client:
        shared = await client.artifact.list_shared(name=name, metadata_filter={"input": args.input_id})
        if len(shared) != 1:  # a filtered listing has no total: its page has them all
            raise SystemExit(f"{len(shared)} artifacts named {name} are shared with this agent, not 1")
        found = shared[0]
        path = await client.artifact.download_file(found.id, os.path.join(args.out, name))

    with open(path, encoding="utf-8") as f:
        content = json.load(f)
    print(json.dumps({"id": found.id, "owner": found.owner, "path": path, "content": content}))


if __name__ == "__main__":
    asyncio.run(main())

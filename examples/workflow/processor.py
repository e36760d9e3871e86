#!/usr/bin/env python3
"""processor: read the input artifact, compute its result, and write the result as an artifact.

The result (count, sum, mean of the rows) is stored as output.json and
shared with the pipeline group, so that the artifact-saver can read it.
Prints the result artifact's id.

    ARTMESH_API=<node B> ARTMESH_API_KEY=<processor's key> python3 processor.py INPUT_ID
"""

import argparse
import asyncio
import json

import _sdk  # noqa: F401
import artmesh


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input_id")
    p.add_argument("--group", default="pipeline", help="the group to share the result with")
    args = p.parse_args()

    async with artmesh.AsyncClient(consistent_reads=True) as client:
        rows = json.loads(await client.artifact.download(args.input_id))["rows"]
        result = {"input": args.input_id, "count": len(rows), "sum": sum(rows), "mean": sum(rows) / len(rows) if rows else None}
        out = await client.artifact.create_snippet("output.json", result, metadata={"input": args.input_id, "stage": "processed"})
        await client.artifact.share(out.id, with_groups=[args.group])
    print(out.id)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""data-loader: download the input artifact by id into a folder, and check that it is the input.

Prints the path of the file it wrote.

    ARTMESH_API=<node A> ARTMESH_API_KEY=<data-loader's key> python3 data_loader.py INPUT_ID --out DIR
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
    p.add_argument("--out", default=".", help="the folder to write the input to")
    args = p.parse_args()

    # consistent_reads: see every write the mesh acknowledged, whichever node made it.
    async with artmesh.AsyncClient(consistent_reads=True) as client:
        meta = await client.artifact.get(args.input_id)
        path = os.path.join(args.out, f"input-{args.input_id}.json")
        await client.artifact.download_file(args.input_id, path)

    with open(path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    if not all(isinstance(r, (int, float)) for r in rows):
        raise SystemExit(f"{path}: the input's rows are not all numbers")
    if os.path.getsize(path) != meta.size_bytes:
        raise SystemExit(f"{path}: {os.path.getsize(path)} bytes, the artifact has {meta.size_bytes}")
    print(path)


if __name__ == "__main__":
    asyncio.run(main())

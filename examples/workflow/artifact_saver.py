#!/usr/bin/env python3
"""artifact-saver: save the processor's result as processed-<input id>.json and share it with a group.

Prints the saved artifact's id.

    ARTMESH_API=<node C> ARTMESH_API_KEY=<artifact-saver's key> python3 artifact_saver.py INPUT_ID RESULT_ID --share-with analysts
"""

import argparse
import asyncio

import _sdk  # noqa: F401
import artmesh


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input_id")
    p.add_argument("result_id")
    p.add_argument("--share-with", default="analysts", help="the group that may read the saved result")
    args = p.parse_args()

    async with artmesh.AsyncClient(consistent_reads=True) as client:
        result = await client.artifact.download(args.result_id)
        saved = await client.artifact.create(
            f"processed-{args.input_id}.json",
            result,
            content_type="application/json",
            metadata={"input": args.input_id, "source": args.result_id},
        )
        await client.artifact.share(saved.id, with_groups=[args.share_with])
    print(saved.id)


if __name__ == "__main__":
    asyncio.run(main())

"""`python -m ingest`: load, validate, chunk, embed and publish knowledge/ into the store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.embeddings import EmbeddingModelError
from bot.logs import configure_logging
from bot.settings import get_settings, prepare_runtime_environment
from bot.store import StoreError
from ingest.knowledge import KnowledgeError

EXIT_KNOWLEDGE_ERROR = 2
EXIT_STORE_ERROR = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--knowledge", type=Path, metavar="DIR", help="knowledge folder (default: KNOWLEDGE_DIR)")
    parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    parser.add_argument("--rebuild", action="store_true",
                        help="embed everything again into a fresh version (e.g. after changing EMBEDDING_MODEL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the counts at the end")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the store already has a current version (used by `make setup`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    prepare_runtime_environment(settings)
    configure_logging(settings.log_level, settings.log_message_text)
    from ingest.service import IngestService, terminal_progress

    service = IngestService(settings)
    if args.if_missing:
        try:
            if service.store.resolve_pointer()[1] is None:
                return 0  # a sound store: nothing to do
        except StoreError:
            pass  # missing: build it (damaged: repair it)
    try:
        report = service.run(knowledge_dir=args.knowledge, dry_run=args.dry_run, rebuild=args.rebuild,
                             progress=terminal_progress)
    except KnowledgeError as exc:
        print(f"Knowledge files have {len(exc.problems)} problem(s); nothing was written and the "
              "store keeps serving its current version:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "problems": [str(p) for p in exc.problems]}, ensure_ascii=False))
        return EXIT_KNOWLEDGE_ERROR
    except (StoreError, EmbeddingModelError) as exc:
        print(f"Ingest failed: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        return EXIT_STORE_ERROR
    if args.json:
        print(json.dumps({"ok": True, **report.as_json()}, ensure_ascii=False))
    else:
        print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

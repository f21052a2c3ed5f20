"""What the archive and purge commands share: run a service's batches with a running count."""

import time


def run_batches(command, batches, *, dry_run: bool, done_verb: str, dry_verb: str) -> int:
    started = time.monotonic()
    done = 0
    for count in batches:
        done += count
        if not dry_run:
            command.stderr.write(f"\r{done_verb} {done} files", ending="")
    if done and not dry_run:
        command.stderr.write("")
    seconds = time.monotonic() - started
    command.stdout.write(f"{dry_verb if dry_run else done_verb} {done} files in {seconds:.1f} s")
    return done

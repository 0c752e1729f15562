// Deterministic crash points for the tests of checkpointing and resume: a test sets
// ALIGNKIT_FAULT=POINT:N:SIGNAL (e.g. "checkpoint-file:3:KILL") and the process raises SIGNAL
// (KILL, TERM or INT) the N-th time it passes POINT. Unset, a point costs one branch.
#pragma once

namespace alignkit {

// Points the host passes: "step" (after each optimizer step, before logging), "checkpoint-file"
// (after each file of a checkpoint is written), "checkpoint-commit" (a complete checkpoint folder
// about to be renamed into place), "checkpoint-prune" (after the rename, before older
// checkpoints are removed).
void fault_point(const char* point);

}  // namespace alignkit

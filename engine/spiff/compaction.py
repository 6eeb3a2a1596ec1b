"""Compaction of SpiffWorkflow task trees, so that long cases keep working.

The problem
-----------
SpiffWorkflow 3.2.0 keeps every task instance it ever created in one tree per (sub)process: each
round of a BPMN loop (review -> count -> gateway -> back to review) hangs three more levels under
the previous round. The library's task iterators stop descending at ``max_depth=1000``, so around
round 333 the newest tasks fall below the horizon: ``do_engine_steps`` no longer sees the READY
gateway, ``is_completed()`` reports a running instance as finished (and that is saved), and
``cancel()`` cancels nothing below that depth. Raising the limit is not a fix: several library
functions recurse once per tree level (``is_descendant_of``, ``find_ancestor``, parallel joins)
and die with ``RecursionError``, and the state that we save after every command, as well as the
time of every engine step, grows linearly with the number of rounds (2.4 MB and 230 ms per round
at round 2,000 when measured). There is no prune API in 3.2.0.

The design
----------
Between engine steps, after the audit log has recorded what happened, :func:`compact` removes the
finished history that no part of the library will read again, and leaves every task that can
still run, together with what it needs, exactly as it was. Per task tree (the top-level one and
each running subprocess in ``workflow.subprocesses``) it:

1. finds the anchors, tasks that stay where they are: the root; every unfinished task
   (predicted, waiting, ready or started) and its direct parent; every task in ERROR (an
   incident must stay inspectable and resettable); the ancestors up to its split, and the
   split's children, of an unfinished structured join (boundary events, several start events);
   the chain from the root to the anchors stays, as a chain;
2. finds the retained tasks, which stay although nothing live descends from them:
   ``workflow.last_task``, and while a join waits the cancelled arrivals of its other branches
   with their parents; those off the chain are hung from the root, as only their own state and
   their parent's data are read;
3. drops finished side branches: subtrees with nothing anchored or retained (a cancelled
   boundary timer, the branch a parallel join has merged, a finished iteration of a standard
   loop, an event subprocess that has run), together with the subprocesses of their tasks;
4. splices out completed links on the chain: a finished task that is neither anchored nor
   retained and has a single child is removed, and its child is attached to its parent.

After compaction a loop's tree is a handful of levels deep whatever the number of rounds, so the
iterators see every live task, and the cost of a step and the size of the saved state stay flat.
Everything is iterative: the first compaction of an instance saved before this existed may face
a tree close to the library's horizon.

Why the behaviour does not change
---------------------------------
* Data inheritance. A task copies its parent's data when it becomes ready (``_inherit_data``),
  and a subprocess or call activity copies its task's data into the new subprocess. The direct
  parent of every unfinished task is anchored, so every copy that is still to happen reads the
  same dict it would have read without compaction. Task data is never touched; the serializer
  stores each task's data as a delta from its (possibly new) parent and rebuilds the same values.
* Parallel and inclusive joins. A join task that waits is cancelled when a sibling branch
  arrives, and the join that fires then checks that the parent of every other task of its spec
  has COMPLETED and merges those parents' data (tasks of the spec that are its ancestors, i.e.
  earlier rounds, are skipped). So while a task of a join spec is WAITING, the other tasks of
  that spec off the chain are retained with their parents; once the join has fired, the merged
  branches are finished side branches and go. The end join that waits for all branches works
  the same way: a branch that ended early (a fired non-interrupting reminder) keeps two tasks
  under the root, so that the final data is merged as without compaction.
* Boundary events and other structured joins. A boundary event join, and the join behind several
  start events, find their split with ``find_ancestor`` and read the split's children (the main
  task, the waiting or fired events). While such a join is unfinished, the chain up to its split
  and the split's children are anchored. A waiting boundary timer or message is an unfinished task,
  so it stays with its split (its direct parent), keeps its ``internal_data`` (the due time) and
  stays registered with the event manager.
* Waiting timers and messages anywhere (intermediate catch events, receive tasks, event-based
  gateways) are unfinished tasks and stay; their registrations in the event manager are kept.
  Registrations of removed tasks are dropped, as the library does when it cancels them.
* Event subprocesses hang under the root of their process, which is never removed; while one
  waits or runs its task is unfinished. A triggered one that has finished is a finished side
  branch and is dropped with its subprocess.
* Subprocesses and call activities. Their task trees live in ``workflow.subprocesses``, keyed by
  the id of the task in the parent tree. A running subprocess has a STARTED task, which stays; a
  subprocess is deleted (with the subprocesses nested in it) only when its task is removed, and
  then it has completed and its data has already been copied back to its task. Running
  subprocess trees are compacted by the same rules.
* Standard loops keep their finished iterations as children of the loop task; the loop counts
  iterations in the loop task's ``internal_data`` (kept), not by its children, so finished
  iterations are finished side branches. The library's list of merged iteration ids still grows
  by about 40 bytes per iteration.
* The serializer restores tasks in insertion order and needs a task's parent before the task; a
  child is only ever re-attached to one of its ancestors, which was created earlier.

Caveats
-------
* This edits private fields of the task tree (``Task._parent``, ``Task._children``,
  ``Workflow.tasks``): the library version is pinned and these rules must be re-checked on any
  upgrade.
* History is gone from the tree: write the audit trail before compacting, and do not read
  completed tasks from the tree afterwards. Ids of removed tasks stop resolving.
* Call it only between engine steps (after ``do_engine_steps()``/``refresh_timers()``, before
  saving), never from inside a script or callback.
* ``task_removed_event`` is not fired for compacted tasks: it reports tasks removed by a reset,
  which is not what happens here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

if TYPE_CHECKING:
    from uuid import UUID

    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.util.subworkflow import BpmnBaseWorkflow
    from SpiffWorkflow.task import Task as SpiffTask

__all__ = ["compact", "tree_depth"]


def compact(workflow: BpmnWorkflow) -> int:
    """Remove finished history from a workflow's task trees.

    Safe to call after every ``do_engine_steps()``: a tree with nothing finished to remove is
    left unchanged, and a completed workflow is not touched. The workflow stays serializable
    with ``BpmnWorkflowSerializer`` and continues as it would have without compaction.

    Args:
        workflow: The top-level workflow, between engine steps.

    Returns:
        How many task objects were removed, counting the tasks of deleted subprocesses.
    """
    if workflow.completed:
        return 0
    removed = _compact_tree(workflow, workflow)
    # Snapshot: compacting one tree deletes the subprocesses of its removed tasks.
    for subprocess_id in list(workflow.subprocesses):
        subprocess = workflow.subprocesses.get(subprocess_id)
        if subprocess is not None and not subprocess.completed:
            removed += _compact_tree(subprocess, workflow)
    return removed


def tree_depth(workflow: BpmnBaseWorkflow) -> int:
    """Return the number of levels below the root of a workflow's own task tree.

    Iterative, so it also measures trees far deeper than the library's iterators can walk.

    Args:
        workflow: A top-level workflow or one of its subprocesses.

    Returns:
        0 for a tree with a root only; the depth of the deepest task otherwise.
    """
    deepest = 0
    stack = [(workflow.task_tree, 0)]
    while stack:
        task, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((workflow.tasks[child_id], depth + 1) for child_id in task._children)
    return deepest


def _compact_tree(workflow: BpmnBaseWorkflow, top: BpmnWorkflow) -> int:
    """Apply the compaction rules to one task tree; return the number of tasks removed."""
    tasks = workflow.tasks
    root = workflow.task_tree
    anchors, waiting_joins = _anchors(workflow, top)
    if not any(tasks[task_id].has_state(TaskState.NOT_FINISHED_MASK) for task_id in anchors):
        # A tree with nothing left to run (e.g. a subprocess that has just finished) is left
        # whole: there is no chain to shorten, and it is removed with its task anyway.
        return 0

    chain = _with_ancestors(tasks, anchors)
    retained = _retained(workflow, chain, waiting_joins)
    kept = chain | retained

    # Retained tasks off the chain are read for their own state and their parent's data, not
    # for their position: hang them from the root so that the branch above them can go.
    for task_id in retained - chain:
        task = tasks[task_id]
        if task._parent in retained or task._parent == root.id:
            continue
        tasks[task._parent]._children.remove(task_id)
        task._parent = root.id
        root._children.append(task_id)

    doomed: list[UUID] = []

    # Finished side branches: children of kept tasks that lead to nothing kept.
    for task_id in kept:
        task = tasks[task_id]
        if all(child_id in kept for child_id in task._children):
            continue
        kept_children = []
        for child_id in task._children:
            if child_id in kept:
                kept_children.append(child_id)
            else:
                doomed.extend(_subtree_ids(tasks, child_id))
        task._children = kept_children

    # Completed links: a finished task that nothing needs and that has one child is only a step
    # on the way to the tasks below it.
    for task_id in chain:
        task = tasks[task_id]
        if (
            task_id in anchors
            or task_id in retained
            or task._parent is None
            or len(task._children) != 1
            or not task.has_state(TaskState.FINISHED_MASK)
        ):
            continue
        parent = tasks[task._parent]
        child = tasks[task._children[0]]
        parent._children[parent._children.index(task_id)] = child.id
        child._parent = parent.id
        task._children = []
        doomed.append(task_id)

    for task_id in doomed:
        del tasks[task_id]
    return len(doomed) + _forget(top, doomed)


def _anchors(workflow: BpmnBaseWorkflow, top: BpmnWorkflow) -> tuple[set[UUID], set[str]]:
    """Return the tasks that must stay where they are, and the names of waiting join specs."""
    tasks = workflow.tasks
    anchors: set[UUID] = {workflow.task_tree.id}
    waiting_joins: set[str] = set()
    for task in tasks.values():
        subprocess = top.subprocesses.get(task.id)
        running = subprocess is not None and not subprocess.completed
        if not (task.has_state(TaskState.NOT_FINISHED_MASK | TaskState.ERROR) or running):
            continue
        anchors.add(task.id)
        if task._parent is not None:
            # The task inherits this parent's data when it becomes ready.
            anchors.add(task._parent)
        spec = task.task_spec
        if isinstance(spec, UnstructuredJoin) and task.state == TaskState.WAITING:
            waiting_joins.add(spec.name)
        elif isinstance(spec, Join) and spec.split_task is not None:
            anchors.update(_path_to_split(tasks, task, spec.split_task))
    return anchors, waiting_joins


def _retained(workflow: BpmnBaseWorkflow, chain: set[UUID], waiting_joins: set[str]) -> set[UUID]:
    """Return the tasks that must stay although nothing live descends from them.

    ``last_task`` is read by ``run_next()`` and by subprocess completion, and the serializer
    stores its id. While a join waits, the join that fires checks that the parent of every
    other task of its spec has completed and merges that parent's data; those tasks are the
    cancelled arrivals of other branches (for the end join: of branches that ended early).
    Tasks of the spec on the chain are ancestors of the firing join, which the library skips.
    """
    tasks = workflow.tasks
    retained: set[UUID] = set()
    if workflow.last_task is not None and workflow.last_task.id in tasks:
        retained.add(workflow.last_task.id)
    if waiting_joins:
        for task in tasks.values():
            if task.task_spec.name in waiting_joins and task.id not in chain:
                retained.add(task.id)
                if task._parent is not None:
                    retained.add(task._parent)
    return retained


def _path_to_split(tasks: dict[UUID, SpiffTask], join: SpiffTask, split_name: str) -> set[UUID]:
    """Return the ancestors of a structured join up to its split, and the split's children.

    The join finds the split by name among its ancestors and inspects the split's children.
    Without such an ancestor the library fails on its own, so nothing is added for it.
    """
    path: set[UUID] = set()
    parent_id = join._parent
    while parent_id is not None:
        parent = tasks[parent_id]
        path.add(parent_id)
        if parent.task_spec.name == split_name:
            path.update(parent._children)
            return path
        parent_id = parent._parent
    return set()


def _with_ancestors(tasks: dict[UUID, SpiffTask], anchors: set[UUID]) -> set[UUID]:
    """Return the anchors together with every task on their paths to the root."""
    needed: set[UUID] = set()
    for task_id in anchors:
        current: UUID | None = task_id
        while current is not None and current not in needed:
            needed.add(current)
            current = tasks[current]._parent
    return needed


def _subtree_ids(tasks: dict[UUID, SpiffTask], start: UUID) -> list[UUID]:
    """Return the ids of a task and all its descendants, without recursion."""
    found = []
    stack = [start]
    while stack:
        task_id = stack.pop()
        found.append(task_id)
        stack.extend(tasks[task_id]._children)
    return found


def _forget(top: BpmnWorkflow, removed: list[UUID]) -> int:
    """Drop what refers to removed tasks; return the number of subprocess tasks deleted.

    Subprocesses are keyed by the id of their task. A removed task's subprocess has completed
    (only finished tasks are removed), and it may hold nested subprocesses of its own.
    """
    deleted = 0
    pending = list(removed)
    while pending:
        task_id = pending.pop()
        top.event_manager.tasks.pop(task_id, None)
        subprocess = top.subprocesses.pop(task_id, None)
        if subprocess is not None:
            deleted += len(subprocess.tasks)
            pending.extend(subprocess.tasks)
    return deleted

"""Every reply format the simulator emits, on every built-in example, scores the same with an
older scorer and this one (checked when the scoring rules change):

    git show REV:lrcal/calsets/scoring.py > /tmp/old_scoring.py
    python scripts/compare_scorers.py /tmp/old_scoring.py
"""
import importlib.util, sys, collections

from lrcal.calsets import load_set, resolve_set
from lrcal.calsets import scoring as new
from lrcal.sim import answers
from lrcal.sim.index import sim_example

spec = importlib.util.spec_from_file_location("old_scoring", sys.argv[1])
old = importlib.util.module_from_spec(spec); sys.modules["old_scoring"] = old; spec.loader.exec_module(old)

forms = {
    "multiple_choice": answers.REPLY_FORMS["multiple_choice"], "number": answers.REPLY_FORMS["number"],
    "exact": answers.REPLY_FORMS["exact"], "anls": answers.REPLY_FORMS["anls"],
}
checked = diffs = 0
per_type = collections.Counter()
for name in ("builtin-v1", "builtin-v1-holdout", "builtin-v1-pool", "builtin-v1-quick"):
    cset = load_set(resolve_set(name))
    others = collections.defaultdict(list)
    for e in cset.examples:
        others[e.task_group].append(e.answer)
    for e in cset.examples:
        sx = sim_example(e, name)
        values = [e.answer] + [answers.wrong_answer(sx, others[e.task_group], (name, e.id, k)) for k in range(6)]
        replies = list(answers.GENERIC_ANSWERS)
        for value in values:
            if e.answer_type == "yes_no":
                word = answers.yes_no(value)
                replies += list(answers.REPLY_FORMS["yes_no"][word])
            elif e.answer_type == "multiple_choice":
                idx = answers.choice_index(value, e.choices)
                fs = forms["multiple_choice"] if e.choices else forms["multiple_choice"][:5]
                replies += [f.format(L=answers.LETTERS[idx], T=e.choices[idx] if e.choices else "") for f in fs]
                replies += [f.format(a=value) for f in answers.REPLY_FORMS["exact"]]
            else:
                replies += [f.format(a=value.strip()) for f in forms[e.answer_type]]
            for k in range(12):  # what phrase() itself picks
                replies.append(answers.phrase(sx, value, (name, e.id, "p", k)))
        for reply in replies:
            a, b = old.score_answer(e, reply), new.score_answer(e, reply)
            checked += 1; per_type[e.answer_type] += 1
            if (a.parsed, a.score, a.correct) != (b.parsed, b.score, b.correct):
                diffs += 1
                print("DIFF", name, e.id, e.answer_type, repr(e.answer), repr(reply), a, b)
print(f"checked {checked} replies ({dict(per_type)}), {diffs} differ")

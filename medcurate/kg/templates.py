"""KG question templates as data (templates/kg/*.yaml plus any user folder).

A template is keyed by relation (optionally by subject type) and language; it may only name the
slots its relation provides ({subject}, {objects}; two-hop templates also {middle}; a capitalised
slot such as {Subject} capitalises the value). A template naming any other slot is refused at
load time with its file and id.
"""
from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from medcurate.errors import MedcurateError
from medcurate.resources import data_folder

ONE_HOP_SLOTS = frozenset({"subject", "objects"})
TWO_HOP_SLOTS = ONE_HOP_SLOTS | {"middle"}


@dataclass(frozen=True)
class Hop:
    relation: str
    inverse: bool = False


@dataclass(frozen=True)
class Template:
    id: str
    lang: str
    question: str
    answer: str
    relation: str = ""
    subject_type: str | None = None
    path: tuple[Hop, ...] = ()
    paper: bool = False
    file: str = ""

    @property
    def two_hop(self) -> bool:
        return bool(self.path)


@dataclass(frozen=True)
class TemplateSet:
    lang: str
    one_hop: dict[str, tuple[Template, ...]]
    two_hop: tuple[Template, ...]

    def for_subject(self, relation: str, subject_type: str | None) -> tuple[Template, ...]:
        """Templates of a relation that fit the subject's type (untyped templates fit all)."""
        return tuple(t for t in self.one_hop.get(relation, ()) if t.subject_type in (None, subject_type))

    @property
    def relations(self) -> set[str]:
        return set(self.one_hop)


def slots_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_slots(template: Template, allowed: frozenset[str]) -> None:
    for text in (template.question, template.answer):
        try:
            names = slots_of(text)
        except ValueError as exc:
            raise MedcurateError(f"template {template.id}: bad placeholder ({exc})", file=template.file,
                                 field=template.id) from None
        unknown = sorted(name for name in names if name.lower() not in allowed or (name and not name.isidentifier()))
        if unknown:
            where = f"relation {template.relation}" if not template.two_hop else "a two-hop path"
            raise MedcurateError(f"template {template.id} names slot {{{unknown[0]}}} which {where} lacks "
                                 f"(slots: {', '.join(sorted(allowed))})", file=template.file, field=template.id)


def _load_file(path: Path, lang: str) -> list[Template]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MedcurateError(f"malformed YAML: {str(exc).splitlines()[0]}", file=str(path)) from None
    if data.get("lang", lang) != lang:
        return []
    loaded: list[Template] = []
    for entry in data.get("templates") or []:
        if not isinstance(entry, dict) or not all(entry.get(k) for k in ("id", "relation", "question", "answer")):
            raise MedcurateError("a template needs id, relation, question and answer", file=str(path),
                                 field=str((entry or {}).get("id", "templates")) if isinstance(entry, dict) else "templates")
        template = Template(id=str(entry["id"]), lang=lang, question=entry["question"], answer=entry["answer"],
                            relation=str(entry["relation"]), subject_type=entry.get("subject_type"),
                            paper=bool(entry.get("paper")), file=str(path))
        _check_slots(template, ONE_HOP_SLOTS)
        loaded.append(template)
    for entry in data.get("two_hop") or []:
        path_entries = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path_entries, list) or len(path_entries) != 2 or not all(entry.get(k) for k in ("id", "question", "answer")):
            raise MedcurateError("a two-hop template needs id, question, answer and a path of two hops",
                                 file=str(path), field=str(entry.get("id", "two_hop")) if isinstance(entry, dict) else "two_hop")
        hops = tuple(Hop(str(hop["relation"]), bool(hop.get("inverse"))) for hop in path_entries)
        template = Template(id=str(entry["id"]), lang=lang, question=entry["question"], answer=entry["answer"],
                            relation="+".join(h.relation for h in hops), path=hops, file=str(path))
        _check_slots(template, TWO_HOP_SLOTS)
        loaded.append(template)
    return loaded


def load_templates(lang: str, extra_dirs: Iterable[str | Path] = ()) -> TemplateSet:
    """All templates of one language: the shipped ones, then every *.yaml in ``extra_dirs``."""
    if lang not in ("zh", "en"):
        raise MedcurateError(f"unknown language {lang!r}: use zh or en", field="lang")
    files = sorted((data_folder("templates") / "kg").glob("*.yaml"))
    for folder in extra_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise MedcurateError("templates folder not found", file=str(folder), field="templates")
        files.extend(sorted(folder.glob("*.yaml")))
    one_hop: dict[str, list[Template]] = {}
    two_hop: list[Template] = []
    seen: dict[str, str] = {}
    for path in files:
        for template in _load_file(path, lang):
            if template.id in seen:
                raise MedcurateError(f"duplicate template id {template.id} (also in {seen[template.id]})",
                                     file=str(path), field=template.id)
            seen[template.id] = str(path)
            if template.two_hop:
                two_hop.append(template)
            else:
                one_hop.setdefault(template.relation, []).append(template)
    return TemplateSet(lang, {k: tuple(v) for k, v in one_hop.items()}, tuple(two_hop))

"""Real-world input: files as they come, nothing changed silently, the task never guessed wrong
quietly, predict as people use it. Each category is a table of small generated files."""
from __future__ import annotations

import codecs
import json
import os
import re
import stat

import numpy as np
import pandas as pd
import pytest

from launcher import artifacts
from launcher.core.errors import DataError
from launcher.core.paths import run_dir
from launcher.pipeline.train import train


def frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).round(3)
    return pd.DataFrame({"x": x, "size": rng.integers(1, 50, n), "color": rng.choice(["red", "blue", "grün"], n),
                         "label": np.where(x > 0, "yes", "no")})


def write_csv(path, df, **kw):
    df.to_csv(path, index=False, **kw)
    return path


# -- 1. files as they come ---------------------------------------------------------------------
def _semicolon_decimal_comma(path):
    text = frame().to_csv(index=False, sep=";").replace(".", ",")  # 0,123 like a European spreadsheet
    path.write_text(text, encoding="utf-8")
    return path


FORMATS = [
    ("comma.csv", lambda p: write_csv(p, frame()), {"sep": ",", "encoding": "utf-8"}),
    ("semicolon.csv", _semicolon_decimal_comma, {"sep": ";", "decimal": ","}),
    ("tab.tsv", lambda p: write_csv(p, frame(), sep="\t"), {"sep": "\t"}),
    ("pipe.txt", lambda p: write_csv(p, frame(), sep="|"), {"sep": "|"}),
    ("bom.csv", lambda p: write_csv(p, frame(), encoding="utf-8-sig"), {"encoding": "utf-8-sig"}),
    ("windows.csv", lambda p: write_csv(p, frame(), encoding="cp1252"), {"encoding": "cp1252"}),
    # what a spreadsheet saves as "Unicode text": UTF-16 with a byte-order mark, tab-separated
    ("unicode_text.txt", lambda p: write_csv(p, frame(), sep="\t", encoding="utf-16"),
     {"encoding": "utf-16", "sep": "\t"}),
    ("utf16_big_endian.csv", lambda p: (p.write_bytes(codecs.BOM_UTF16_BE + frame().to_csv(index=False)
                                                      .encode("utf-16-be")), p)[1], {"encoding": "utf-16"}),
    ("utf16_no_mark.csv", lambda p: write_csv(p, frame(), encoding="utf-16-le"), {"encoding": "utf-16-le"}),
    ("utf32.csv", lambda p: write_csv(p, frame(), encoding="utf-32"), {"encoding": "utf-32"}),
    ("gzipped.csv.gz", lambda p: write_csv(p, frame(), compression="gzip"), {"compression": "gzip"}),
    ("zipped.zip", lambda p: write_csv(p, frame(), compression={"method": "zip", "archive_name": "a.csv"}),
     {"compression": "zip"}),
    ("table.parquet", lambda p: (frame().to_parquet(p), p)[1], {"kind": "parquet"}),
]


@pytest.mark.parametrize("name,make,expected", FORMATS, ids=[f[0] for f in FORMATS])
def test_files_as_they_come_are_read_and_recorded(make_cfg, tmp_path, name, make, expected):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = make(tmp_path / name)
    cfg = make_cfg("data=csv", f"data.path={path}", "data.target=label", "model=logistic_regression")
    train(cfg)
    record = json.loads((run_dir() / "metrics.json").read_text())
    assert record["test"]["accuracy"] > 0.8  # the numbers were read as numbers
    meta = artifacts.read_metadata(run_dir() / "model")
    assert meta["data"]["name"] == record["data"] == path.stem  # the model says what it was trained on
    for key, value in expected.items():
        assert meta["data"]["read"][key] == value
    kinds = meta["features"]["kinds"]
    assert set(kinds["numeric"]) == {"x", "size"} and kinds["categorical"] == ["color"]


def test_the_log_says_how_the_file_was_read(make_cfg, tmp_path, caplog):
    path = tmp_path / "churn.csv"
    path.write_bytes(frame().to_csv(index=False, sep=";").replace(".", ",").encode("cp1252"))
    with caplog.at_level("INFO", logger="launcher"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=label", "model=logistic_regression"))
    assert "data: read churn.csv (delimiter ';', encoding cp1252, decimal ',')" in [r.getMessage()
                                                                                    for r in caplog.records]


def test_a_code_page_other_than_cp1252_is_recognised(make_cfg, tmp_path):
    """Not UTF-8 and not Western: charset-normalizer names it (cp1251 read as cp1252 is mojibake)."""
    rng = np.random.default_rng(4)
    cities = ["Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород"]
    df = frame(200).assign(color=rng.choice(cities, 200))
    path = write_csv(tmp_path / "russian.csv", df, encoding="cp1251")
    train(make_cfg("data=csv", f"data.path={path}", "data.target=label", "model=logistic_regression"))
    meta = artifacts.read_metadata(run_dir() / "model")
    assert meta["data"]["read"]["encoding"] == "cp1251"
    features = json.loads((run_dir() / "model" / "preprocessing.json").read_text())["features"]
    assert set(cities) <= set(json.dumps(features, ensure_ascii=False).split('"'))  # the names, not mojibake


def test_an_undetectable_delimiter_names_what_was_found_and_the_option(make_cfg, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("a#b#label\n" + "".join(f"{i % 7}#{i % 5}#{i % 2}\n" for i in range(30)))
    with pytest.raises(DataError) as err:
        train(make_cfg("data=csv", f"data.path={path}", "data.target=label"))
    message = str(err.value)
    assert "could not tell how" in message and "data.sep" in message and "semicolon" in message
    assert "',': 1 field(s) in the header" in message
    train(make_cfg("data=csv", f"data.path={path}", "data.target=label", "data.sep='#'", "model=logistic_regression"))


def test_a_forced_wrong_encoding_is_named(make_cfg, tmp_path):
    path = write_csv(tmp_path / "w.csv", frame(), encoding="cp1252")
    with pytest.raises(DataError, match="is not utf-8"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=label", "data.encoding=utf-8"))


# -- 2. nothing changes silently ----------------------------------------------------------------
def messy(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),           # unique whole numbers counting up
        "email": [f"user{i}@example.com" for i in range(n)],  # unique text
        "empty": [None] * n,                                   # nothing in it
        "country": ["NL"] * n,                                 # one value everywhere
        "x": x,
        "ratio": np.where(np.arange(n) % 20 == 0, np.inf, rng.normal(size=n)),
        "age": [str(a) for a in rng.integers(18, 80, n)],
        "signup": pd.date_range("2022-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "y": np.where(x > 0, "a", "b"),
    })
    df.loc[[3, 7], "age"] = ["unknown", "-"]
    return df


def test_every_column_dropped_or_changed_is_a_warning_line_and_a_record(make_cfg, tmp_path, caplog):
    path = tmp_path / "messy.csv"
    text = messy().to_csv(index=False)
    header, rest = text.split("\n", 1)
    path.write_text(header + ",x\n" + "\n".join(line + ",0" for line in rest.splitlines()) + "\n")  # a 2nd "x"
    with caplog.at_level("WARNING", logger="launcher"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=y", "model=logistic_regression"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    expected = {
        "duplicate column name 'x' appears 2 times: read as 'x', 'x.1'": "duplicate",
        "dropped 1 empty column(s) (no value in any row): 'empty'": "empty",
        "dropped 2 constant column(s) (one value in every row): 'country', 'x.1'": "constant",
        "'customer_id' (unique whole numbers in every row, counting up)": "id number",
        "'email' (unique in every row)": "id text",
        "column 'age': 2 non-numeric value(s) in a number column treated as missing: '-', 'unknown'": "tokens",
        "column 'ratio': 4 infinite value(s) treated as missing": "infinite",
        "parsed 1 date column(s) into year, month, day, weekday, hour and days since 1970: 'signup'": "dates",
    }
    for text_, what in expected.items():
        assert sum(text_ in w for w in warnings) == 1, (what, warnings)
    record = json.loads((run_dir() / "metrics.json").read_text())
    assert len(record["data_notes"]) == len(warnings) == 7  # the two ID-like columns share a line
    meta = artifacts.read_metadata(run_dir() / "model")
    excluded = meta["features"]["excluded"]
    assert excluded == {"empty": "empty", "country": "constant", "x.1": "constant",
                        "customer_id": "ID-like: unique whole numbers in every row, counting up",
                        "email": "ID-like: unique in every row"}
    assert "age" in meta["features"]["kinds"]["numeric"] and "ratio" in meta["features"]["kinds"]["numeric"]
    assert meta["data"]["notes"] == record["data_notes"]


def test_a_numeric_target_with_a_few_words_is_regression_with_a_warning(make_cfg, tmp_path, caplog):
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["price"] = (df["x"] * 10 + 50 + rng.normal(size=300)).round(2).astype(str)
    df.loc[[5, 9, 11], "price"] = ["unknown", "-", "?"]
    path = write_csv(tmp_path / "prices.csv", df)
    with caplog.at_level("INFO", logger="launcher"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=price", "model=logistic_regression"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("target 'price': 3 non-numeric value(s) treated as missing: '-', '?', 'unknown'" in m for m in messages)
    assert any("left out 3 row(s) whose target 'price' is missing" in m for m in messages)
    assert any(m.startswith("task=auto: regression (target 'price' is numeric") for m in messages)
    record = json.loads((run_dir() / "metrics.json").read_text())
    assert record["task"] == "regression" and record["test"]["r2"] > 0.9
    assert sum(record["rows"].values()) == 297


def test_implausible_classes_are_refused_with_the_hint(make_cfg, tmp_path):
    df = pd.DataFrame({"x": np.random.default_rng(0).normal(size=100),
                       "code": [f"c{i}" for i in range(95)] + ["c1"] * 5})
    path = write_csv(tmp_path / "codes.csv", df)
    with pytest.raises(DataError, match="95 classes in 100 rows and 94 of them appear once.*task=regression"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=code"))


@pytest.mark.parametrize("overrides,why", [
    (["data=iris"], "task=auto: classification (the dataset iris declares it)"),
    (["model=kmeans"], "task=auto: clustering (model=kmeans clusters)"),
])
def test_task_auto_says_what_it_chose_and_why(make_cfg, caplog, overrides, why):
    with caplog.at_level("INFO", logger="launcher"):
        train(make_cfg(*overrides, "save_model=false"))
    assert why in [r.getMessage() for r in caplog.records]


# -- 3. labels, names and numbers as people write them -------------------------------------------
def spelled(n: int = 150) -> pd.DataFrame:
    """'yes' written three ways, as hand-kept sheets do: with a stray trailing space and capitalised."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=n)
    yes = rng.choice(["yes", "yes ", "Yes"], n, p=[0.6, 0.2, 0.2])
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "answer": np.where(x > 0, yes, "no")})


@pytest.mark.parametrize("setting,classes,note", [
    (None, ["Yes", "no", "yes"],
     "target 'answer': labels differing only by surrounding spaces or case are separate classes: 'Yes' / 'yes'; "
     "if they are one class, set data.normalize_labels=casefold"),
    ("casefold", ["no", "yes"],
     "target 'answer': 2 label spelling(s) differing only by surrounding spaces or case read as one class "
     "(data.normalize_labels=casefold): 'Yes' -> 'yes', 'yes ' -> 'yes'"),
    ("keep", ["Yes", "no", "yes", "yes "],
     "target 'answer': labels differing only by surrounding spaces or case are separate classes: "
     "'Yes' / 'yes' / 'yes '; if they are one class, set data.normalize_labels=casefold"),
])
def test_labels_that_differ_only_by_spaces_or_case(cli, tmp_path, setting, classes, note):
    df = spelled()
    write_csv(tmp_path / "answers.csv", df)
    extra = [f"data.normalize_labels={setting}"] if setting else []
    res = cli("data=csv", "data.path=answers.csv", "data.target=answer", "model=logistic_regression",
              "hydra.run.dir=run", *extra)
    assert res.returncode == 0, res.stderr
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert note in record["data_notes"] and note in res.stderr + res.stdout  # a warning line and a record
    if setting is None:  # the default trims: 'yes ' is 'yes'
        assert "target 'answer': 1 label spelling(s) differing only by surrounding spaces read as one class " \
               "(data.normalize_labels=strip): 'yes ' -> 'yes'" in record["data_notes"]
    prep = json.loads((tmp_path / "run" / "model" / "preprocessing.json").read_text())["target"]
    assert prep["classes"] == classes and prep["labels"] == (setting or "strip")
    if setting == "casefold":
        assert record["test"]["accuracy"] >= 0.9  # one class again: nothing left to confuse
    # predict answers in the classes training chose, and a labelled file maps as training did
    df.drop(columns=["answer"]).to_csv(tmp_path / "new.csv", index=False)
    res = cli("run=run", "input=new.csv", "output=pred.csv", module="launcher.predict")
    assert res.returncode == 0, res.stderr
    assert set(pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)["answer"]) <= set(classes)
    from launcher.data import TargetEncoder

    encoder = TargetEncoder.from_dict(prep)
    encoded = encoder.encode(df["answer"])
    assert list(encoder.decode(encoded)) == [spelling if spelling in classes else spelling.strip().lower()
                                             if setting == "casefold" else spelling.strip()
                                             for spelling in df["answer"]]


def test_a_target_column_named_twice_is_refused_naming_both(make_cfg, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=80)
    y = np.where(x > 0, "a", "b")
    path = tmp_path / "twice.csv"
    pd.DataFrame({"x": x, "y": y, "y_copy": y}).to_csv(path, index=False)
    path.write_text(path.read_text().replace("x,y,y_copy", "x,y,y", 1))  # the header names it twice
    message = ("twice.csv has 2 columns named 'y': column 2 (read as 'y'), column 3 (read as 'y.1'); the target "
               "'y' would have its namesake 'y.1' among the features")
    for target in ("y", "y.1"):
        with pytest.raises(DataError) as err:
            train(make_cfg("data=csv", f"data.path={path}", f"data.target={target}"))
        assert ("twice.csv has 2 columns named 'y'" in str(err.value)
                and "Rename one of them in the file, or set data.drop=" in str(err.value))
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=y"))
    assert not (run_dir() / "metrics.json").exists()
    # said which one is not the target: it trains, and the copy is not a feature
    train(make_cfg("data=csv", f"data.path={path}", "data.target=y", "data.drop=[y.1]", "model=logistic_regression"))
    meta = artifacts.read_metadata(run_dir() / "model")
    assert meta["features"]["input_columns"] == ["x"]


def _european(path, df):
    text = df.to_csv(index=False, sep=";", float_format="%.2f")
    # 2087.80 -> 2.087,80: a decimal comma and a point between thousands, as German spreadsheets write
    path.write_text(re.sub(r"(\d+)\.(\d\d)", lambda m: f"{int(m[1]):,}".replace(",", ".") + "," + m[2], text))
    return path


def _quoted_american(path, df):
    text = df.to_csv(index=False, float_format="%.2f")
    path.write_text(re.sub(r"(\d+)\.(\d\d)", lambda m: f'"{int(m[1]):,}.{m[2]}"', text))  # "1,234.50"
    return path


@pytest.mark.parametrize("write,thousands,decimal", [(_european, ".", ","), (_quoted_american, ",", ".")],
                         ids=["2.087,80", "1,234.5"])
def test_numbers_with_thousands_separators_are_numbers(make_cfg, tmp_path, caplog, write, thousands, decimal):
    rng = np.random.default_rng(7)
    area = rng.uniform(200, 4000, 200)  # square feet: some above a thousand
    df = pd.DataFrame({"area": area, "rooms": rng.integers(1, 6, 200).astype(float)})
    df["price"] = area * 310 + rng.normal(0, 5000, 200)  # thousands to millions
    path = write(tmp_path / "houses.csv", df)
    assert f"{thousands}" in path.read_text().splitlines()[1]
    with caplog.at_level("INFO", logger="launcher"):
        train(make_cfg("data=csv", f"data.path={path}", "data.target=price", "model=logistic_regression"))
    record = json.loads((run_dir() / "metrics.json").read_text())
    assert record["task"] == "regression" and record["test"]["r2"] > 0.9
    assert (f"read 2 column(s) of numbers written with thousands separator {thousands!r} and decimal {decimal!r} "
            "as numbers: 'area', 'price'") in record["data_notes"]
    meta = artifacts.read_metadata(run_dir() / "model")
    assert meta["data"]["read"]["thousands"] == thousands and meta["features"]["kinds"]["numeric"] == ["area", "rooms"]
    assert any(m.startswith("data: read houses.csv (") and f"thousands {thousands!r}" in m
               for m in [r.getMessage() for r in caplog.records])


def test_a_target_of_numbers_with_mixed_separators_is_not_sent_to_classification(make_cfg, tmp_path):
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"x": rng.normal(size=60)})
    df["price"] = [f"{v:,.2f}" for v in rng.uniform(1000, 9000, 60)]
    df.loc[::7, "price"] = ["1.234,50"] * len(df.loc[::7])  # someone typed a few the other way
    path = write_csv(tmp_path / "mixed.csv", df)
    with pytest.raises(DataError) as err:
        train(make_cfg("data=csv", f"data.path={path}", "data.target=price", "task=regression"))
    assert "numbers written with separators in more than one way" in str(err.value)
    assert "task=classification" not in str(err.value)


# -- 4. predict as people use it ------------------------------------------------------------------
@pytest.fixture
def customers(tmp_path):
    rng = np.random.default_rng(3)
    n = 120
    income = rng.normal(50, 15, n).round(1)
    df = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(n)], "region": rng.choice(["n", "s"], n),
                       "income": income, "leak": rng.normal(size=n),
                       "churned": np.where(income < 50, "yes", "no")})
    return write_csv(tmp_path / "customers.csv", df), df


def test_predict_copies_id_columns_and_names_proba_columns_the_same_way(cli, tmp_path, customers):
    path, df = customers
    res = cli("data=csv", f"data.path={path.name}", "data.target=churned", "data.drop=[leak]",
              "model=logistic_regression", "hydra.run.dir=run")
    assert res.returncode == 0, res.stderr
    new = df.drop(columns=["churned"]).iloc[:10].sample(frac=1, random_state=0)  # shuffled: join by id
    new.assign(batch="b7").to_csv(tmp_path / "new.csv", sep=";", index=False)  # another delimiter
    os.umask(0o022)
    res = cli("run=run", "input=new.csv", "output=pred.csv", "proba=true", "proba_output=proba.csv",
              "id_columns=batch", module="launcher.predict")
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["customer_id", "leak", "batch", "churned", "proba_no", "proba_yes"]
    assert pred["customer_id"].tolist() == new["customer_id"].tolist()
    truth = df.set_index("customer_id")["churned"]
    assert (pred.set_index("customer_id")["churned"] == truth[pred["customer_id"]]).mean() >= 0.8
    proba = pd.read_csv(tmp_path / "proba.csv")
    assert list(proba.columns) == ["customer_id", "leak", "batch", "proba_no", "proba_yes"]
    for name in ("pred.csv", "proba.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644  # the umask's, not private

    res = cli("run=run", "input=new.csv", "output=p2.csv", module="launcher.predict")
    assert res.returncode == 2 and "unexpected columns ['batch']" in res.stderr and "id_columns=" in res.stderr


@pytest.mark.parametrize("args,message", [
    (["run=reg", "proba=true"], "need a classification model; the model in reg does regression"),
    (["run=nowhere"], "run directory nowhere does not exist"),
    (["run=empty"], "holds no saved model"),
])
def test_predict_refuses_clearly(cli, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    if "run=reg" in args:
        assert cli("data=diabetes", "model=logistic_regression", "hydra.run.dir=reg").returncode == 0
    pd.DataFrame({"age": [0.1]}).to_csv(tmp_path / "in.csv", index=False)
    res = cli(*args, "input=in.csv", "output=out.csv", module="launcher.predict")
    assert res.returncode == 2 and res.stderr.startswith("error: ") and message in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out.csv").exists()

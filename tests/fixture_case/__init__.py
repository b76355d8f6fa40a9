"""A case study that only the tests register: a few assets, a trivial model, a tiny service.

It proves that a new case study is its own folders plus one registry entry: it goes through the main command's code
path, the release kit and the shared contract tests with no edit anywhere else.
"""


from dataclasses import dataclass

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec, CaseStudy, GatedTraining, InvalidSetting, Platform
from assets.common import metrics_table
from assets.raw import build_raw_table
from assets.common import case_definitions, case_job
from assets.release import PromotionSettings, Scores, build_release_assets, gate, register_challenger, rollback_job
from assets.resources import MlflowTracking, RawSource
from expectations.runner import Suite
from models.packaging import pinned_requirements
from models.promotion import PromotionPolicy

NAME = "fixture_case"
REGISTERED_MODEL = "fixture_case_line"
CHECK = "fixture_case_challenger_beats_champion"
POLICY = PromotionPolicy(metric="mse", min_relative_improvement=0.01, guards={}, absolute_limits={})
BENTO = BentoSpec("tests/fixture_case/bentofile.yaml", ("mlflow", "numpy", "pandas", "pydantic"))
SCHEMA = {"row_id": pl.String, "x": pl.Float64, "y": pl.Float64}


@dataclass(frozen=True)
class FixtureSettings:
    rows: int = 400
    seed: int = 1
    noise: float = 0.5

    def __post_init__(self):
        if self.rows < 10:
            raise InvalidSetting("rows", "must be at least 10")


@dataclass
class _World:
    points: pl.DataFrame


class FixtureSource(RawSource):
    tables = ("points",)
    rows: int = 400
    noise: float = 0.5

    def fingerprint(self) -> str:
        return f"{self.seed}-{self.rows}-{self.noise}"

    def simulate(self) -> _World:
        rng = np.random.default_rng(self.seed)
        x = rng.uniform(0, 10, self.rows)
        return _World(pl.DataFrame({"row_id": [f"r{i}" for i in range(self.rows)], "x": x,
                                    "y": 2.0 * x + 1.0 + rng.normal(0, self.noise, self.rows)}))


def _suite(frame, window):
    import great_expectations.expectations as gxe

    return frame, Suite(name="fixture_points", dtypes=SCHEMA, id_columns=("row_id",),
                        expectations=[gxe.ExpectColumnValuesToBeUnique(column="row_id"),
                                      gxe.ExpectColumnValuesToNotBeNull(column="x")])


def _holdout(points: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    cut = int(points.height * 0.75)
    return points.head(cut), points.tail(points.height - cut)


def build_definitions(platform: Platform, settings: FixtureSettings) -> dg.Definitions:
    raw = build_raw_table(NAME, "points", SCHEMA, "Points (x, y) as the source gives them.", _suite,
                          "Unique ids, x present.")

    @dg.asset(group_name=NAME, kinds={"numpy", "mlflow"})
    def fixture_case_line(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking,
                          fixture_case_points: pl.DataFrame) -> dg.MaterializeResult:
        """A least-squares line, registered as the challenger."""
        from tests.fixture_case.model import LineModel, fit_line

        train, _ = _holdout(fixture_case_points)
        slope, intercept = fit_line(train["x"].to_numpy(), train["y"].to_numpy())
        with mlflow_tracking.start_run(NAME, "line", {"model": "line"}) as run, mlflow_tracking.activated() as mlflow:
            mlflow.log_params({"slope": slope, "intercept": intercept})
            info = mlflow.pyfunc.log_model(
                name="model", python_model=LineModel(slope, intercept),
                pip_requirements=pinned_requirements("mlflow", "numpy", "pandas"),
            )
        version = register_challenger(context, NAME, mlflow_tracking, info.model_uri, REGISTERED_MODEL)
        return dg.MaterializeResult(value=pl.DataFrame({"version": [version], "model_uri": [info.model_uri]}),
                                    metadata=mlflow_tracking.run_link(run))

    @dg.asset(group_name=NAME, kinds={"mlflow", "polars"})
    def fixture_case_evaluation(mlflow_tracking: MlflowTracking, fixture_case_points: pl.DataFrame,
                                fixture_case_line: pl.DataFrame) -> dg.MaterializeResult:
        """The line against the mean of the training points, on the held-out points."""
        train, test = _holdout(fixture_case_points)
        y = test["y"].to_numpy()
        line = mlflow_tracking.load_pyfunc(fixture_case_line["model_uri"][0]).predict(test.to_pandas())
        rows = {"mean (baseline)": {"mse": float(np.mean((y - train["y"].mean()) ** 2))},
                "line": {"mse": float(np.mean((y - line) ** 2))}}
        with mlflow_tracking.start_run(NAME, "evaluation") as run, mlflow_tracking.activated() as mlflow:
            mlflow.log_metrics({"baseline_mse": rows["mean (baseline)"]["mse"], "line_mse": rows["line"]["mse"]})
        return dg.MaterializeResult(
            value=pl.DataFrame([{"model": k, **v} for k, v in rows.items()]),
            metadata={"comparison": dg.MetadataValue.md(metrics_table(rows, ["mse"])), "baseline": "mean",
                      "baseline_value": rows["mean (baseline)"]["mse"], "model_value": rows["line"]["mse"],
                      "oracle_value": None, **mlflow_tracking.run_link(run)},
        )

    @dg.asset_check(asset=fixture_case_evaluation, name=CHECK, blocking=True,
                    additional_ins={"points": dg.AssetIn("fixture_case_points"), "line": dg.AssetIn("fixture_case_line")},
                    description="Challenger vs champion on the same held-out points.")
    def challenger_beats_champion(context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking,
                                  promotion: PromotionSettings, fixture_case_evaluation: pl.DataFrame,
                                  points: pl.DataFrame, line: pl.DataFrame) -> dg.AssetCheckResult:
        _, test = _holdout(points)

        def score(version: str) -> Scores:
            errors = (test["y"].to_numpy() - mlflow_tracking.load_pyfunc(
                f"models:/{REGISTERED_MODEL}/{version}").predict(test.to_pandas())) ** 2
            return Scores({"mse": float(errors.mean())}, errors)

        return gate(context, NAME, mlflow_tracking, promotion, REGISTERED_MODEL, str(line["version"][0]), POLICY, score,
                    unit="point")

    release = build_release_assets(NAME, REGISTERED_MODEL, "fixture_case_line", "fixture_case_evaluation", CHECK, BENTO,
                                   "The fixture service")
    assets = [*raw, fixture_case_line, fixture_case_evaluation, challenger_beats_champion, *release]
    return case_definitions(
        assets,
        jobs=[case_job(NAME, f"{NAME}_training_job", selection=dg.AssetSelection.groups(NAME),
                       description="Everything: ingest, fit, evaluate, gate, package."),
              rollback_job(NAME)],
        resources={f"{NAME}_source": FixtureSource(raw_dir=None, raw_dir_setting="MLSD_FIXTURE_CASE_RAW_DIR",
                                                   landing_dir=platform.landing_dir(NAME), seed=settings.seed,
                                                   rows=settings.rows, noise=settings.noise)},
    )


CASE = CaseStudy(
    name=NAME, chapter=0, title="Fixture case", predicts="y from x", metric="MSE (lower is better)", serving="online",
    settings_type=FixtureSettings, small={"rows": 400}, build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL, evaluation_asset="fixture_case_evaluation",
    training_job=f"{NAME}_training_job", rollback_job=f"{NAME}_rollback_job", promotion_check=CHECK,
    run_steps=(GatedTraining(f"{NAME}_training_job", CHECK, "fit a line"),),
    bento=BENTO,
    example_requests={"/predict": {"x": [1.0, 2.5]}},
)

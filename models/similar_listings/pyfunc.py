"""The similar-listings model as an MLflow pyfunc: the embeddings, the ANN index and the catalogue they were built
with, in one versioned folder. Logged from code (pyfunc_model.py), so nothing is pickled."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from models.similar_listings.service_model import SimilarListings, UnknownListing


class SimilarListingsModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = SimilarListings.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """listing_id rows in; listing_id, rank, similar_id, score, strategy out (k from params, default 10). An id
        the catalogue does not hold gets no rows."""
        k = int((params or {}).get("k", 10))
        rows = []
        for listing_id in model_input["listing_id"].astype(str):
            try:
                answer = self.model.similar(listing_id, k)
            except UnknownListing:
                continue
            rows += [{"listing_id": listing_id, "rank": rank, "similar_id": other, "score": score,
                      "strategy": answer.strategy}
                     for rank, (other, score, _, _) in enumerate(answer.results, 1)]
        return pd.DataFrame(rows, columns=["listing_id", "rank", "similar_id", "score", "strategy"])


def log_similar_listings(model: SimilarListings, bundle: Path):
    """Logs the bundle as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    model.save(bundle)
    sample = pd.DataFrame({"listing_id": [str(i) for i in model.catalogue.ids[:3]]})
    loaded = SimilarListingsModel()
    loaded.model = model
    return log_from_code("similar_listings", {"bundle": str(bundle)}, sample, loaded.predict(None, sample),
                         ("mlflow", "torch", "faiss-cpu", "polars", "pandas", "numpy", "scipy"), params={"k": 10},
                         input_example=False)

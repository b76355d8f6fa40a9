"""Request building blocks every service shares: ids with a safe alphabet, and models that refuse unknown fields."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

"""Imported once by the forkserver that starts run steps (`definitions.EXECUTOR`): every registered case study's
package with its assets, models and suites (torch and faiss among them), which a step would otherwise import
again before it could start (3.5 s a step on 2 cores)."""

from orchestration.cases import registered

CASES = registered()

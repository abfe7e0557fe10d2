"""Pipelines: one module per experiment type (named in ``scenario.types.EXPERIMENT_TYPES``),
each a plain ``run(scenario, tracker) -> PipelineResult`` beside its pre-run checks
``check(scenario)`` and ``check_models(scenario, saved_for)``. Heavy frameworks are imported
inside functions, so importing a pipeline module is cheap.
"""

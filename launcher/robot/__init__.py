"""The robot maker: a task in words and a dataset become reviewed, committable Hydra configs,
which it then runs within a time budget.

task.py       MLTask: description, dataset, requirements, budget, the task type and why
profile.py    what a planner may know of the data: counts and shares, never cells
blueprint.py  the plan's schema (pydantic, extra fields forbidden): registry keys and numbers
space.py      the registry of tunable keys and their bounds; the conditional search's sampler
planners/     heuristic (offline, default), openai and anthropic (official SDKs)
validate.py   a blueprint checked against the registry, Hydra's parser and a composition
emit.py       conf/experiment/robot/<slug>.yaml and conf/hparams_search/robot/<slug>.yaml
maker.py      RobotMaker (MLRobotMaker): create_task, generate_model_blueprint, plan
__main__.py   python -m launcher.robot: the robot as a Hydra app (conf/robot.yaml)
"""

"""The task names of the optional suites, so that `env.id` is checked without importing a
simulator (dm_control and Meta-World take seconds to import): dm_control's `suite.ALL_TASKS` as
'<domain>-<task>' and Meta-World's v3 environments without '-v3', as of the versions pinned in
constraints.txt (dm-control 1.0.49, metaworld 3.0.0).
tests/test_env_suites.py checks them against the installed packages."""

DMC_TASKS = (
    "acrobot-swingup", "acrobot-swingup_sparse", "ball_in_cup-catch", "cartpole-balance",
    "cartpole-balance_sparse", "cartpole-swingup", "cartpole-swingup_sparse",
    "cartpole-two_poles", "cartpole-three_poles", "cheetah-run", "dog-stand", "dog-walk",
    "dog-trot", "dog-run", "dog-fetch", "finger-spin", "finger-turn_easy", "finger-turn_hard",
    "fish-upright", "fish-swim", "hopper-stand", "hopper-hop", "humanoid-stand",
    "humanoid-walk", "humanoid-run", "humanoid-run_pure_state", "humanoid_CMU-stand",
    "humanoid_CMU-walk", "humanoid_CMU-run", "lqr-lqr_2_1", "lqr-lqr_6_2",
    "manipulator-bring_ball", "manipulator-bring_peg", "manipulator-insert_ball",
    "manipulator-insert_peg", "pendulum-swingup", "point_mass-easy", "point_mass-hard",
    "quadruped-walk", "quadruped-run", "quadruped-escape", "quadruped-fetch", "reacher-easy",
    "reacher-hard", "stacker-stack_2", "stacker-stack_4", "swimmer-swimmer6",
    "swimmer-swimmer15", "walker-stand", "walker-walk", "walker-run",
)

METAWORLD_TASKS = (
    "assembly", "basketball", "bin-picking", "box-close", "button-press",
    "button-press-topdown", "button-press-topdown-wall", "button-press-wall", "coffee-button",
    "coffee-pull", "coffee-push", "dial-turn", "disassemble", "door-close", "door-lock",
    "door-open", "door-unlock", "drawer-close", "drawer-open", "faucet-close", "faucet-open",
    "hammer", "hand-insert", "handle-press", "handle-press-side", "handle-pull",
    "handle-pull-side", "lever-pull", "peg-insert-side", "peg-unplug-side", "pick-out-of-hole",
    "pick-place", "pick-place-wall", "plate-slide", "plate-slide-back", "plate-slide-back-side",
    "plate-slide-side", "push", "push-back", "push-wall", "reach", "reach-wall", "shelf-place",
    "soccer", "stick-pull", "stick-push", "sweep", "sweep-into", "window-close", "window-open",
)

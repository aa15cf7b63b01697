"""An app that passes its whole config to a function as keyword arguments (`**cfg`): any key
the sweeper slipped into the job's config would break it."""
import hydra


def objective(x: float, y: int) -> float:
    return (x - 1.0) ** 2 + y**2


@hydra.main(version_base="1.3", config_path="conf", config_name="kwargs")
def main(cfg) -> float:
    return objective(**cfg)


if __name__ == "__main__":
    main()

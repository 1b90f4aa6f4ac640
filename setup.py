"""ament_python package evo1_ros (+ the torch-free `recording` package beside it)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "evo1_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["evo1_ros", "evo1_ros.*", "recording", "recording.*"]),
    package_data={"evo1_ros": ["py.typed"], "recording": ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.*")),  # every config file: .yaml .xml .json .rviz
        (f"share/{PACKAGE}/config/launch", glob("config/launch/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="evo1_ros developers",
    maintainer_email="evo1-ros@example.com",
    description="Evo-1 VLA policy, xArm6 driver, LeRobot v2.1 recording for ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "evo1 = evo1_ros.cli.main:main",
            "xarm_driver = evo1_ros.nodes.xarm_driver:main",
            "xarm_loopback_controller = evo1_ros.sim.loopback_main:main",
            "recorder = evo1_ros.nodes.recorder:main",
            "teleop = evo1_ros.nodes.teleop:main",
            "evo1_policy = evo1_ros.nodes.evo1_policy:main",
            "recorder_keyboard = evo1_ros.nodes.recorder_keyboard:main",
            "sim = evo1_ros.nodes.sim:main",
            "robot_state = evo1_ros.nodes.robot_state:main",
        ],
    },
)

"""evo1_ros.train"""

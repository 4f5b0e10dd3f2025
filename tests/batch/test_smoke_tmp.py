def test_smoke(logistic_package, hgb_package, regressor_package, multiclass_package, onnx_package, hooks_package):
    for p in (logistic_package, hgb_package, regressor_package, multiclass_package, onnx_package, hooks_package):
        print(p.path, p.package.manifest.to_yaml())

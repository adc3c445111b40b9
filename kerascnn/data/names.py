"""Class names of the built-in data sets, in label order.

Keras ships the arrays but not the names; these are the published ones (Xiao et al. 2017 for
Fashion-MNIST, Krizhevsky 2009 for CIFAR-10). CIFAR-100's 100 fine names are read from the `meta`
file that comes with its archive instead of being copied here.
"""

DIGITS = [str(i) for i in range(10)]

FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

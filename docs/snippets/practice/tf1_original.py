# The source document's example, unchanged. Under TensorFlow 2 it stops at the
# first tf.placeholder (TF2 removed placeholders and sessions), and X_train and
# y_train are never defined.
import tensorflow as tf

# 定义模型参数
input_size = 10
hidden_size = 20
output_size = 5
learning_rate = 0.01

# 定义模型结构
x = tf.placeholder(tf.float32, [None, input_size])
y_true = tf.placeholder(tf.float32, [None, output_size])

# 定义隐藏层
W1 = tf.Variable(tf.random_normal([input_size, hidden_size]))
b1 = tf.Variable(tf.random_normal([hidden_size]))
h = tf.nn.relu(tf.matmul(x, W1) + b1)

# 定义输出层
W2 = tf.Variable(tf.random_normal([hidden_size, output_size]))
b2 = tf.Variable(tf.random_normal([output_size]))
y_pred = tf.matmul(h, W2) + b2

# 定义损失函数
loss = tf.reduce_mean(tf.square(y_pred - y_true))

# 定义优化器
optimizer = tf.train.GradientDescentOptimizer(learning_rate).minimize(loss)

# 初始化变量
init = tf.global_variables_initializer()

# 启动会话并训练模型
with tf.Session() as sess:
    sess.run(init)
    for i in range(1000):
        sess.run(optimizer, feed_dict={x: X_train, y_true: y_train})

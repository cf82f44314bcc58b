/* The cell rows of cf_cells.h instantiated once per instruction-set level (cf_levels.h; no
 * include guard on purpose). */

CF_LSTM_ROW(float, cf_lstm_row_f32, cf_sigmoidf, cf_tanhf)
CF_LSTM_ROW(double, cf_lstm_row_f64, cf_sigmoid, tanh)
CF_LSTM_BACKWARD_ROW(float, cf_lstm_backward_row_f32)
CF_LSTM_BACKWARD_ROW(double, cf_lstm_backward_row_f64)
CF_GRU_ROW(float, cf_gru_row_f32, cf_sigmoidf, cf_tanhf)
CF_GRU_ROW(double, cf_gru_row_f64, cf_sigmoid, tanh)
CF_GRU_BACKWARD_ROW(float, cf_gru_backward_row_f32)
CF_GRU_BACKWARD_ROW(double, cf_gru_backward_row_f64)
CF_RNN_BACKWARD_ROW(float, cf_rnn_backward_row_f32)
CF_RNN_BACKWARD_ROW(double, cf_rnn_backward_row_f64)
